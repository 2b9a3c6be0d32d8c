/* The op table: every ONNX op onnxshard knows, once (an X-macro).
 * OP(id, "OnnxName", min_inputs, max_inputs, shape inference, sharding rule);
 * max_inputs -1: variadic. Anything else is OP_OPAQUE. The functions live in
 * ops_math.c, ops_shape.c, ops_index.c and ops_nn.c, declared by ops_impl.h.
 * OP_SINCE(id, version) (at the end): the default-domain opset from which
 * the op has the form its shape inference and rule assume; in a model of an
 * older opset the op is OP_OPAQUE (everything replicated). Unlisted: 1.
 * OP_OPTIONAL(id, mask) (at the end): inputs below min_inputs that may be
 * empty, a bit per input (an optional input between required ones). */
/* matrix products */
OP(MatMul, "MatMul", 2, 2, infer_matmul, rule_matmul)
OP(Gemm, "Gemm", 2, 3, infer_gemm, rule_gemm)
OP(Einsum, "Einsum", 1, -1, infer_einsum, rule_einsum)
/* convolution and pooling */
OP(Conv, "Conv", 2, 3, infer_conv, rule_conv)
OP(ConvTranspose, "ConvTranspose", 2, 3, infer_convtranspose, rule_conv)
OP(MaxPool, "MaxPool", 1, 1, infer_pool, rule_pool)
OP(AveragePool, "AveragePool", 1, 1, infer_pool, rule_pool)
OP(GlobalAveragePool, "GlobalAveragePool", 1, 1, infer_globalpool, rule_pool)
OP(GlobalMaxPool, "GlobalMaxPool", 1, 1, infer_globalpool, rule_pool)
/* normalisation */
OP(BatchNormalization, "BatchNormalization", 5, 5, infer_batchnorm, rule_batchnorm)
OP(InstanceNormalization, "InstanceNormalization", 3, 3, infer_same, rule_instnorm)
OP(LayerNormalization, "LayerNormalization", 2, 3, infer_layernorm, rule_layernorm)
OP(GroupNormalization, "GroupNormalization", 3, 3, infer_same, rule_groupnorm)
/* elementwise with broadcasting */
OP(Add, "Add", 2, 2, infer_bcast, rule_bcast)
OP(Sub, "Sub", 2, 2, infer_bcast, rule_bcast)
OP(Mul, "Mul", 2, 2, infer_bcast, rule_bcast)
OP(Div, "Div", 2, 2, infer_bcast, rule_bcast)
OP(Pow, "Pow", 2, 2, infer_bcast, rule_bcast)
OP(Mod, "Mod", 2, 2, infer_bcast, rule_bcast)
OP(Max, "Max", 1, -1, infer_bcast, rule_bcast)
OP(Min, "Min", 1, -1, infer_bcast, rule_bcast)
OP(Sum, "Sum", 1, -1, infer_bcast, rule_bcast)
OP(Mean, "Mean", 1, -1, infer_bcast, rule_bcast)
OP(PRelu, "PRelu", 2, 2, infer_bcast, rule_bcast)
OP(Equal, "Equal", 2, 2, infer_compare, rule_bcast)
OP(Less, "Less", 2, 2, infer_compare, rule_bcast)
OP(Greater, "Greater", 2, 2, infer_compare, rule_bcast)
OP(LessOrEqual, "LessOrEqual", 2, 2, infer_compare, rule_bcast)
OP(GreaterOrEqual, "GreaterOrEqual", 2, 2, infer_compare, rule_bcast)
OP(And, "And", 2, 2, infer_compare, rule_bcast)
OP(Or, "Or", 2, 2, infer_compare, rule_bcast)
OP(Xor, "Xor", 2, 2, infer_compare, rule_bcast)
OP(Where, "Where", 3, 3, infer_where, rule_bcast)
OP(BitwiseAnd, "BitwiseAnd", 2, 2, infer_bcast, rule_bcast)
OP(BitwiseOr, "BitwiseOr", 2, 2, infer_bcast, rule_bcast)
OP(BitwiseXor, "BitwiseXor", 2, 2, infer_bcast, rule_bcast)
OP(BitShift, "BitShift", 2, 2, infer_bcast, rule_bcast)
/* elementwise unary */
OP(Relu, "Relu", 1, 1, infer_same, rule_same)
OP(Gelu, "Gelu", 1, 1, infer_same, rule_same)
OP(Sigmoid, "Sigmoid", 1, 1, infer_same, rule_same)
OP(Tanh, "Tanh", 1, 1, infer_same, rule_same)
OP(Erf, "Erf", 1, 1, infer_same, rule_same)
OP(Sqrt, "Sqrt", 1, 1, infer_same, rule_same)
OP(Reciprocal, "Reciprocal", 1, 1, infer_same, rule_same)
OP(Neg, "Neg", 1, 1, infer_same, rule_same)
OP(Abs, "Abs", 1, 1, infer_same, rule_same)
OP(Exp, "Exp", 1, 1, infer_same, rule_same)
OP(Log, "Log", 1, 1, infer_same, rule_same)
OP(Sin, "Sin", 1, 1, infer_same, rule_same)
OP(Cos, "Cos", 1, 1, infer_same, rule_same)
OP(Tan, "Tan", 1, 1, infer_same, rule_same)
OP(Asin, "Asin", 1, 1, infer_same, rule_same)
OP(Acos, "Acos", 1, 1, infer_same, rule_same)
OP(Atan, "Atan", 1, 1, infer_same, rule_same)
OP(Sinh, "Sinh", 1, 1, infer_same, rule_same)
OP(Cosh, "Cosh", 1, 1, infer_same, rule_same)
OP(Asinh, "Asinh", 1, 1, infer_same, rule_same)
OP(Acosh, "Acosh", 1, 1, infer_same, rule_same)
OP(Atanh, "Atanh", 1, 1, infer_same, rule_same)
OP(Floor, "Floor", 1, 1, infer_same, rule_same)
OP(Ceil, "Ceil", 1, 1, infer_same, rule_same)
OP(Round, "Round", 1, 1, infer_same, rule_same)
OP(Sign, "Sign", 1, 1, infer_same, rule_same)
OP(Not, "Not", 1, 1, infer_same, rule_same)
OP(BitwiseNot, "BitwiseNot", 1, 1, infer_same, rule_same)
OP(IsNaN, "IsNaN", 1, 1, infer_isx, rule_same)
OP(IsInf, "IsInf", 1, 1, infer_isx, rule_same)
OP(HardSigmoid, "HardSigmoid", 1, 1, infer_same, rule_same)
OP(HardSwish, "HardSwish", 1, 1, infer_same, rule_same)
OP(Softplus, "Softplus", 1, 1, infer_same, rule_same)
OP(Softsign, "Softsign", 1, 1, infer_same, rule_same)
OP(Elu, "Elu", 1, 1, infer_same, rule_same)
OP(Selu, "Selu", 1, 1, infer_same, rule_same)
OP(Celu, "Celu", 1, 1, infer_same, rule_same)
OP(Mish, "Mish", 1, 1, infer_same, rule_same)
OP(LeakyRelu, "LeakyRelu", 1, 1, infer_same, rule_same)
OP(ThresholdedRelu, "ThresholdedRelu", 1, 1, infer_same, rule_same)
OP(Shrink, "Shrink", 1, 1, infer_same, rule_same)
OP(Clip, "Clip", 1, 3, infer_same, rule_same)
OP(Identity, "Identity", 1, 1, infer_same, rule_same)
OP(Dropout, "Dropout", 1, 3, infer_dropout, rule_same)
OP(Cast, "Cast", 1, 1, infer_cast, rule_same)
OP(CastLike, "CastLike", 2, 2, infer_castlike, rule_castlike)
/* along one axis */
OP(Softmax, "Softmax", 1, 1, infer_same, rule_softmax)
OP(LogSoftmax, "LogSoftmax", 1, 1, infer_same, rule_softmax)
OP(CumSum, "CumSum", 2, 2, infer_same, rule_cumsum)
OP(ArgMax, "ArgMax", 1, 1, infer_argmax, rule_argmax)
OP(ArgMin, "ArgMin", 1, 1, infer_argmax, rule_argmax)
OP(TopK, "TopK", 1, 2, infer_topk, rule_topk)
/* reductions */
OP(ReduceSum, "ReduceSum", 1, 2, infer_reduce, rule_reduce)
OP(ReduceMean, "ReduceMean", 1, 2, infer_reduce, rule_reduce)
OP(ReduceMax, "ReduceMax", 1, 2, infer_reduce, rule_reduce)
OP(ReduceMin, "ReduceMin", 1, 2, infer_reduce, rule_reduce)
OP(ReduceProd, "ReduceProd", 1, 2, infer_reduce, rule_reduce)
OP(ReduceL1, "ReduceL1", 1, 2, infer_reduce, rule_reduce)
OP(ReduceL2, "ReduceL2", 1, 2, infer_reduce, rule_reduce)
OP(ReduceLogSum, "ReduceLogSum", 1, 2, infer_reduce, rule_reduce)
OP(ReduceLogSumExp, "ReduceLogSumExp", 1, 2, infer_reduce, rule_reduce)
OP(ReduceSumSquare, "ReduceSumSquare", 1, 2, infer_reduce, rule_reduce)
/* data movement */
OP(Reshape, "Reshape", 2, 2, infer_reshape, rule_reshape)
OP(Transpose, "Transpose", 1, 1, infer_transpose, rule_transpose)
OP(Squeeze, "Squeeze", 1, 2, infer_squeeze, rule_squeeze)
OP(Unsqueeze, "Unsqueeze", 1, 2, infer_unsqueeze, rule_unsqueeze)
OP(Flatten, "Flatten", 1, 1, infer_flatten, rule_flatten)
OP(Concat, "Concat", 1, -1, infer_concat, rule_concat)
OP(Split, "Split", 1, 2, infer_split, rule_split)
OP(Slice, "Slice", 1, 5, infer_slice, rule_slice)
OP(Gather, "Gather", 2, 2, infer_gather, rule_gather)
OP(GatherElements, "GatherElements", 2, 2, infer_gatherelements, rule_gatherelements)
OP(GatherND, "GatherND", 2, 2, infer_gathernd, rule_none)
OP(ScatterElements, "ScatterElements", 3, 3, infer_scatter, rule_scatter)
OP(ScatterND, "ScatterND", 3, 3, infer_scatter, rule_scatter)
OP(Expand, "Expand", 2, 2, infer_expand, rule_expand)
OP(Tile, "Tile", 2, 2, infer_tile, rule_tile)
OP(Pad, "Pad", 1, 4, infer_pad, rule_pad)
OP(Resize, "Resize", 1, 4, infer_resize, rule_resize)
OP(Trilu, "Trilu", 1, 2, infer_same, rule_trilu)
/* images and grids (opsets 16-20) */
OP(GridSample, "GridSample", 2, 2, infer_gridsample, rule_gridsample)
OP(AffineGrid, "AffineGrid", 2, 2, infer_affinegrid, rule_none)
OP(Col2Im, "Col2Im", 3, 3, infer_col2im, rule_col2im)
OP(CenterCropPad, "CenterCropPad", 2, 2, infer_centercroppad, rule_centercroppad)
/* shape computations */
OP(Shape, "Shape", 1, 1, infer_shape, rule_none)
OP(Size, "Size", 1, 1, infer_size, rule_none)
OP(Constant, "Constant", 0, 0, infer_constant, rule_none)
OP(ConstantOfShape, "ConstantOfShape", 1, 1, infer_constantofshape, rule_fill)
OP(Range, "Range", 3, 3, infer_range, rule_none)
/* ONNX Runtime's contrib ops and quantization. Ops of a domain other
 * than ai.onnx are named "domain.Type". */
/* normalisation and activations of ORT's transformer optimizer and model
 * builder (ops_contrib.c) */
OP(SimplifiedLayerNormalization, "SimplifiedLayerNormalization", 2, 2, infer_layernorm,
   rule_layernorm)
OP(MsSimplifiedLayerNormalization, "com.microsoft.SimplifiedLayerNormalization", 2, 2,
   infer_layernorm, rule_layernorm)
OP(MsSkipLayerNormalization, "com.microsoft.SkipLayerNormalization", 3, 5, infer_msskipnorm,
   rule_msskipnorm)
OP(MsSkipSimplifiedLayerNormalization, "com.microsoft.SkipSimplifiedLayerNormalization", 3, 4,
   infer_msskipnorm, rule_msskipnorm)
OP(MsEmbedLayerNormalization, "com.microsoft.EmbedLayerNormalization", 7, 9, infer_msembedln,
   rule_msembedln)
OP(MsGelu, "com.microsoft.Gelu", 1, 1, infer_same, rule_same)
OP(MsQuickGelu, "com.microsoft.QuickGelu", 1, 1, infer_same, rule_same)
OP(MsFastGelu, "com.microsoft.FastGelu", 1, 2, infer_msbiasact, rule_msbiasact)
OP(MsBiasGelu, "com.microsoft.BiasGelu", 2, 2, infer_msbiasact, rule_msbiasact)
OP(MsBiasAdd, "com.microsoft.BiasAdd", 3, 3, infer_msbiasact, rule_msbiasact)
OP(MsBiasSplitGelu, "com.microsoft.BiasSplitGelu", 2, 2, infer_msbiassplitgelu,
   rule_msbiassplitgelu)
OP(MsFusedMatMul, "com.microsoft.FusedMatMul", 2, 2, infer_msfusedmatmul, rule_msfusedmatmul)
/* -- end of normalisation and activations -- */
/* quantization: QDQ, integer products (ops_quant.c) */
OP(QuantizeLinear, "QuantizeLinear", 2, 3, infer_quantize, rule_qdq)
OP(DequantizeLinear, "DequantizeLinear", 2, 3, infer_dequantize, rule_qdq)
OP(MsQuantizeLinear, "com.microsoft.QuantizeLinear", 2, 3, infer_quantize, rule_qdq)
OP(MsDequantizeLinear, "com.microsoft.DequantizeLinear", 2, 3, infer_dequantize, rule_qdq)
OP(DynamicQuantizeLinear, "DynamicQuantizeLinear", 1, 1, infer_dynquant, rule_dynquant)
OP(MatMulInteger, "MatMulInteger", 2, 4, infer_matmulinteger, rule_matmulinteger)
OP(QLinearMatMul, "QLinearMatMul", 8, 8, infer_qlinearmatmul, rule_qlinearmatmul)
OP(ConvInteger, "ConvInteger", 2, 4, infer_convinteger, rule_convinteger)
OP(QLinearConv, "QLinearConv", 8, 9, infer_qlinearconv, rule_qlinearconv)
OP(MsMatMulIntegerToFloat, "com.microsoft.MatMulIntegerToFloat", 4, 7, infer_msmatmulintegertofloat,
   rule_msmatmulintegertofloat)
OP(MsDynamicQuantizeMatMul, "com.microsoft.DynamicQuantizeMatMul", 3, 5, infer_msdynquantmatmul,
   rule_msdynquantmatmul)
/* -- end of quantization -- */
/* routing and scatter (ops_index.c) */
OP(OneHot, "OneHot", 3, 3, infer_onehot, rule_onehot)
/* -- end of routing and scatter -- */
/* attention, rotary embedding, MatMulNBits (ops_attn.c) */
OP(MsMatMulNBits, "com.microsoft.MatMulNBits", 3, 6, infer_msmatmulnbits, rule_msmatmulnbits)
OP(MsGroupQueryAttention, "com.microsoft.GroupQueryAttention", 1, -1, infer_msgqa, rule_msgqa)
OP(MsMultiHeadAttention, "com.microsoft.MultiHeadAttention", 1, -1, infer_msmha, rule_msmha)
OP(MsAttention, "com.microsoft.Attention", 2, -1, infer_msattention, rule_msattention)
OP(MsRotaryEmbedding, "com.microsoft.RotaryEmbedding", 4, 4, infer_msrotary, rule_msrotary)
OP(MsGatherBlockQuantized, "com.microsoft.GatherBlockQuantized", 3, 4, infer_msgatherbq,
   rule_msgatherbq)
/* -- end of attention -- */
#ifdef OP_SINCE
/* broadcast/axis attributes before 7 (not numpy broadcasting) */
OP_SINCE(Add, 7)
OP_SINCE(Sub, 7)
OP_SINCE(Mul, 7)
OP_SINCE(Div, 7)
OP_SINCE(Pow, 7)
OP_SINCE(Equal, 7)
OP_SINCE(Less, 7)
OP_SINCE(Greater, 7)
OP_SINCE(And, 7)
OP_SINCE(Or, 7)
OP_SINCE(Xor, 7)
OP_SINCE(Gemm, 7)
OP_SINCE(PRelu, 7)
/* variadic without broadcasting before 8 */
OP_SINCE(Max, 8)
OP_SINCE(Min, 8)
OP_SINCE(Sum, 8)
OP_SINCE(Mean, 8)
/* 'to' a string before 6 */
OP_SINCE(Cast, 6)
/* (input, tiles, axis) before 6 */
OP_SINCE(Tile, 6)
#endif
#ifdef OP_OPTIONAL
/* segment_ids and segment_embedding (the transformer optimizer's GPT-2
 * leaves them empty) */
OP_OPTIONAL(MsEmbedLayerNormalization, 1u << 1 | 1u << 4)
#endif
