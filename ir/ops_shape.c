/* Shape inference and sharding rules of the data-movement ops. */
#include "ops_impl.h"

int
infer_concat(ir_graph *g, ir_node *n)
{
	(void)g;
	(void)n;
	return 0; /* TODO: shapes unknown */
}

int
infer_expand(ir_graph *g, ir_node *n)
{
	(void)g;
	(void)n;
	return 0; /* TODO: shapes unknown */
}

int
infer_flatten(ir_graph *g, ir_node *n)
{
	(void)g;
	(void)n;
	return 0; /* TODO: shapes unknown */
}

int
infer_gather(ir_graph *g, ir_node *n)
{
	(void)g;
	(void)n;
	return 0; /* TODO: shapes unknown */
}

int
infer_gatherelements(ir_graph *g, ir_node *n)
{
	(void)g;
	(void)n;
	return 0; /* TODO: shapes unknown */
}

int
infer_gathernd(ir_graph *g, ir_node *n)
{
	(void)g;
	(void)n;
	return 0; /* TODO: shapes unknown */
}

int
infer_pad(ir_graph *g, ir_node *n)
{
	(void)g;
	(void)n;
	return 0; /* TODO: shapes unknown */
}

int
infer_reshape(ir_graph *g, ir_node *n)
{
	(void)g;
	(void)n;
	return 0; /* TODO: shapes unknown */
}

int
infer_resize(ir_graph *g, ir_node *n)
{
	(void)g;
	(void)n;
	return 0; /* TODO: shapes unknown */
}

int
infer_scatter(ir_graph *g, ir_node *n)
{
	(void)g;
	(void)n;
	return 0; /* TODO: shapes unknown */
}

int
infer_slice(ir_graph *g, ir_node *n)
{
	(void)g;
	(void)n;
	return 0; /* TODO: shapes unknown */
}

int
infer_split(ir_graph *g, ir_node *n)
{
	(void)g;
	(void)n;
	return 0; /* TODO: shapes unknown */
}

int
infer_squeeze(ir_graph *g, ir_node *n)
{
	(void)g;
	(void)n;
	return 0; /* TODO: shapes unknown */
}

int
infer_tile(ir_graph *g, ir_node *n)
{
	(void)g;
	(void)n;
	return 0; /* TODO: shapes unknown */
}

int
infer_transpose(ir_graph *g, ir_node *n)
{
	(void)g;
	(void)n;
	return 0; /* TODO: shapes unknown */
}

int
infer_unsqueeze(ir_graph *g, ir_node *n)
{
	(void)g;
	(void)n;
	return 0; /* TODO: shapes unknown */
}

void
rule_concat(ir_graph *g, ir_node *n, rule_b *b)
{
	(void)g;
	(void)n;
	(void)b;
}

void
rule_expand(ir_graph *g, ir_node *n, rule_b *b)
{
	(void)g;
	(void)n;
	(void)b;
}

void
rule_flatten(ir_graph *g, ir_node *n, rule_b *b)
{
	(void)g;
	(void)n;
	(void)b;
}

void
rule_gather(ir_graph *g, ir_node *n, rule_b *b)
{
	(void)g;
	(void)n;
	(void)b;
}

void
rule_gatherelements(ir_graph *g, ir_node *n, rule_b *b)
{
	(void)g;
	(void)n;
	(void)b;
}

void
rule_pad(ir_graph *g, ir_node *n, rule_b *b)
{
	(void)g;
	(void)n;
	(void)b;
}

void
rule_reshape(ir_graph *g, ir_node *n, rule_b *b)
{
	(void)g;
	(void)n;
	(void)b;
}

void
rule_resize(ir_graph *g, ir_node *n, rule_b *b)
{
	(void)g;
	(void)n;
	(void)b;
}

void
rule_scatter(ir_graph *g, ir_node *n, rule_b *b)
{
	(void)g;
	(void)n;
	(void)b;
}

void
rule_slice(ir_graph *g, ir_node *n, rule_b *b)
{
	(void)g;
	(void)n;
	(void)b;
}

void
rule_split(ir_graph *g, ir_node *n, rule_b *b)
{
	(void)g;
	(void)n;
	(void)b;
}

void
rule_squeeze(ir_graph *g, ir_node *n, rule_b *b)
{
	(void)g;
	(void)n;
	(void)b;
}

void
rule_tile(ir_graph *g, ir_node *n, rule_b *b)
{
	(void)g;
	(void)n;
	(void)b;
}

void
rule_transpose(ir_graph *g, ir_node *n, rule_b *b)
{
	(void)g;
	(void)n;
	(void)b;
}

void
rule_trilu(ir_graph *g, ir_node *n, rule_b *b)
{
	(void)g;
	(void)n;
	(void)b;
}

void
rule_unsqueeze(ir_graph *g, ir_node *n, rule_b *b)
{
	(void)g;
	(void)n;
	(void)b;
}
