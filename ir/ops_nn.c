/* Shape inference and sharding rules of convolution, pooling and normalisation. */
#include "ops_impl.h"

int
infer_batchnorm(ir_graph *g, ir_node *n)
{
	(void)g;
	(void)n;
	return 0; /* TODO: shapes unknown */
}

int
infer_conv(ir_graph *g, ir_node *n)
{
	(void)g;
	(void)n;
	return 0; /* TODO: shapes unknown */
}

int
infer_convtranspose(ir_graph *g, ir_node *n)
{
	(void)g;
	(void)n;
	return 0; /* TODO: shapes unknown */
}

int
infer_globalpool(ir_graph *g, ir_node *n)
{
	(void)g;
	(void)n;
	return 0; /* TODO: shapes unknown */
}

int
infer_layernorm(ir_graph *g, ir_node *n)
{
	(void)g;
	(void)n;
	return 0; /* TODO: shapes unknown */
}

int
infer_pool(ir_graph *g, ir_node *n)
{
	(void)g;
	(void)n;
	return 0; /* TODO: shapes unknown */
}

void
rule_batchnorm(ir_graph *g, ir_node *n, rule_b *b)
{
	(void)g;
	(void)n;
	(void)b;
}

void
rule_conv(ir_graph *g, ir_node *n, rule_b *b)
{
	(void)g;
	(void)n;
	(void)b;
}

void
rule_groupnorm(ir_graph *g, ir_node *n, rule_b *b)
{
	(void)g;
	(void)n;
	(void)b;
}

void
rule_instnorm(ir_graph *g, ir_node *n, rule_b *b)
{
	(void)g;
	(void)n;
	(void)b;
}

void
rule_layernorm(ir_graph *g, ir_node *n, rule_b *b)
{
	(void)g;
	(void)n;
	(void)b;
}

void
rule_pool(ir_graph *g, ir_node *n, rule_b *b)
{
	(void)g;
	(void)n;
	(void)b;
}
