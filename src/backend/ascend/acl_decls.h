/* acl_decls.h: lmc's own declarations of the Ascend C API it calls (CANN:
 * AscendCL runtime, the aclnn operator API, HCCL), written from Huawei's
 * public API documentation; CANN's headers are not copied (their licence
 * restricts their use). The functions are not linked: acl_load.c opens the
 * libraries with dlopen and fills an npu_api table of pointers, so lmc
 * builds and starts where CANN is absent. tests/ascend/mock implements the
 * same ABI on the CPU.
 *
 * Each group cites the page it was written from (hiascend.com documents
 * "CANN community edition / API reference"; the aclnn pages are the same
 * text as docs/aclnn*.md in Huawei's open ops-math, ops-nn and
 * ops-transformer repositories).
 */
#ifndef LMC_ACL_DECLS_H
#define LMC_ACL_DECLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- types: opaque handles and status codes ----
 * "acl API reference > data types": aclError, aclrtStream, aclrtEvent are
 * an int and two opaque pointers; aclnnStatus is int32_t (0 = success);
 * aclTensor, aclScalar, aclIntArray, aclBoolArray, aclOpExecutor are
 * opaque structs ("aclnn API > common APIs > aclCreateTensor" etc.). */
typedef int acl_error;
typedef int32_t aclnn_status;
typedef void *acl_stream;
typedef void *acl_event;
typedef struct aclTensor acl_tensor;
typedef struct aclScalar acl_scalar;
typedef struct aclIntArray acl_int_array;
typedef struct aclBoolArray acl_bool_array;
typedef struct aclOpExecutor acl_executor;
typedef void *hccl_comm;
typedef int hccl_result;

#define NPU_ACL_SUCCESS 0

/* aclDataType ("acl API reference > aclDataType"): the values lmc uses */
enum {
    NPU_ACL_FLOAT = 0,
    NPU_ACL_INT8 = 2,
    NPU_ACL_INT32 = 3,
    NPU_ACL_UINT8 = 4,
    NPU_ACL_INT64 = 9,
    NPU_ACL_BOOL = 12,
    NPU_ACL_BF16 = 27,
};
/* aclFormat: ACL_FORMAT_ND = 2 (plain row-major with strides) */
#define NPU_ACL_FORMAT_ND 2
/* aclrtMemcpyKind ("aclrtMemcpy"): host to host, host to device, ... */
enum { NPU_MEMCPY_H2H = 0, NPU_MEMCPY_H2D = 1, NPU_MEMCPY_D2H = 2, NPU_MEMCPY_D2D = 3 };
/* aclrtMemMallocPolicy ("aclrtMalloc"): huge pages first */
#define NPU_MEM_MALLOC_HUGE_FIRST 0
/* aclrtMemAttr ("aclrtGetMemInfo"): ACL_DDR_MEM = 0, ACL_HBM_MEM = 1 */
#define NPU_HBM_MEM 1
/* aclSysParamOpt ("aclrtCtxSetSysParamOpt"): ACL_OPT_DETERMINISTIC = 0,
 * value 1 = deterministic computation */
#define NPU_OPT_DETERMINISTIC 0
/* aclrtEventRecordedStatus ("aclrtQueryEventStatus") */
#define NPU_EVENT_RECORDED_COMPLETE 1
/* cubeMathType of the matmuls ("aclnnMatmul"): 0 KEEP_DTYPE computes in
 * the inputs' type (fp32 stays fp32) */
#define NPU_CUBE_KEEP_DTYPE 0
/* HCCL ("HCCL API reference > HcclRootInfo, HcclDataType, HcclReduceOp") */
#define NPU_HCCL_ROOT_INFO_BYTES 4108
typedef struct {
    char internal[NPU_HCCL_ROOT_INFO_BYTES];
} hccl_root_info;
enum { NPU_HCCL_FP32 = 4, NPU_HCCL_UINT8 = 7 };
enum { NPU_HCCL_SUM = 0 };
#define NPU_HCCL_SUCCESS 0

/* Every function lmc calls: X(return type, name, (parameters)).
 * acl_load.c resolves each in the libraries it opened (the mock holds them
 * all in one); a name missing from every library is an open error. */

/* AscendCL runtime ("acl API reference > system configuration, device
 * management, stream management, event management, memory management"):
 * aclInit, aclrtSetDevice, aclrtCreateStream, aclrtMalloc, aclrtMemcpy,
 * aclrtMemcpyAsync, aclrtMemsetAsync, aclrtCreateEvent, aclrtRecordEvent,
 * aclrtStreamWaitEvent, aclrtSynchronizeEvent, aclrtQueryEventStatus,
 * aclrtGetSocName, aclrtGetMemInfo, aclrtCtxSetSysParamOpt,
 * aclGetRecentErrMsg. */
#define NPU_RUNTIME_FUNCS(X)                                                                              \
    X(acl_error, aclInit, (const char *config_path))                                                      \
    X(acl_error, aclrtGetDeviceCount, (uint32_t * count))                                                 \
    X(acl_error, aclrtSetDevice, (int32_t device))                                                        \
    X(acl_error, aclrtResetDevice, (int32_t device))                                                      \
    X(acl_error, aclrtCreateStream, (acl_stream * stream))                                                \
    X(acl_error, aclrtDestroyStream, (acl_stream stream))                                                 \
    X(acl_error, aclrtSynchronizeStream, (acl_stream stream))                                             \
    X(acl_error, aclrtMalloc, (void **dev, size_t size, int policy))                                      \
    X(acl_error, aclrtFree, (void *dev))                                                                  \
    X(acl_error, aclrtMallocHost, (void **host, size_t size))                                             \
    X(acl_error, aclrtFreeHost, (void *host))                                                             \
    X(acl_error, aclrtMemcpy, (void *dst, size_t dst_max, const void *src, size_t count, int kind))       \
    X(acl_error, aclrtMemcpyAsync,                                                                        \
      (void *dst, size_t dst_max, const void *src, size_t count, int kind, acl_stream stream))            \
    X(acl_error, aclrtMemsetAsync, (void *dev, size_t max, int32_t value, size_t count, acl_stream stream)) \
    X(acl_error, aclrtCreateEvent, (acl_event * event))                                                   \
    X(acl_error, aclrtDestroyEvent, (acl_event event))                                                    \
    X(acl_error, aclrtRecordEvent, (acl_event event, acl_stream stream))                                  \
    X(acl_error, aclrtStreamWaitEvent, (acl_stream stream, acl_event event))                              \
    X(acl_error, aclrtSynchronizeEvent, (acl_event event))                                                \
    X(acl_error, aclrtQueryEventStatus, (acl_event event, int *status))                                   \
    X(const char *, aclrtGetSocName, (void))                                                              \
    X(acl_error, aclrtGetMemInfo, (int attr, size_t *free_bytes, size_t *total_bytes))                    \
    X(acl_error, aclrtCtxSetSysParamOpt, (int opt, int64_t value))                                        \
    X(const char *, aclGetRecentErrMsg, (void))

/* aclnn common APIs ("aclnn API reference > common APIs": aclCreateTensor,
 * aclDestroyTensor, aclCreateScalar, aclCreateIntArray, aclCreateBoolArray
 * and their destroy functions). A tensor is a view: dims, strides (in
 * elements, not negative), offset, over storage dims at a device address. */
#define NPU_TENSOR_FUNCS(X)                                                                               \
    X(acl_tensor *, aclCreateTensor,                                                                      \
      (const int64_t *view_dims, uint64_t ndim, int dtype, const int64_t *strides, int64_t offset,        \
       int format, const int64_t *storage_dims, uint64_t storage_ndim, void *data))                       \
    X(aclnn_status, aclDestroyTensor, (const acl_tensor *t))                                              \
    X(acl_scalar *, aclCreateScalar, (void *value, int dtype))                                            \
    X(aclnn_status, aclDestroyScalar, (const acl_scalar *s))                                              \
    X(acl_int_array *, aclCreateIntArray, (const int64_t *value, uint64_t size))                          \
    X(aclnn_status, aclDestroyIntArray, (const acl_int_array *a))                                         \
    X(acl_bool_array *, aclCreateBoolArray, (const bool *value, uint64_t size))                           \
    X(aclnn_status, aclDestroyBoolArray, (const acl_bool_array *a))

/* The aclnn operators, two-phase ("two-phase interface"): first
 * aclnnXxxGetWorkspaceSize(args..., &workspace_size, &executor) checks the
 * arguments and sizes the device workspace, then aclnnXxx(workspace,
 * workspace_size, executor, stream) queues the work. NPU_OP(X) lists each
 * operator's first-phase parameters; the second phase is the same for all.
 * Pages (docs/aclnn<Name>.md in ops-math, ops-nn, ops-transformer):
 *   math: aclnnAdd&aclnnInplaceAdd, aclnnMul&aclnnInplaceMul, aclnnMuls&aclnnInplaceMuls,
 *     aclnnCast, aclnnReduceSum, aclnnInplaceCopy, aclnnInplaceZero, aclnnArange,
 *     aclnnGeTensor, aclnnLog, aclnnExp
 *   nn: aclnnMatmul (cubeMathType), aclnnLayerNorm,
 *     aclnnLayerNormBackward (outputMask of 3), aclnnRmsNorm (rstd keeps
 *     the normalised dim as 1), aclnnRmsNormGrad (dgamma fp32),
 *     aclnnGeluV2 (approximate 1 = tanh), aclnnGeluBackwardV2 ("tanh"),
 *     aclnnSwiGlu / aclnnSwiGluGrad (out = swish(first half) * second
 *     half along dim), aclnnLogSoftmax, aclnnGather,
 *     aclnnInplaceScatterValue (reduce 1 = add), aclnnEmbedding,
 *     aclnnIndexAdd (deterministic with ACL_OPT_DETERMINISTIC), aclnnInplaceIndexCopy, aclnnApplyAdamW
 *     (beta powers are beta^(t-1), hyperparameters are [1] tensors)
 *   transformer: aclnnFlashAttentionScore / aclnnFlashAttentionScoreGrad
 *     (BSND views, non-contiguous allowed; softmax max/sum [B,N,Sq,8] fp32;
 *     Nq % Nkv == 0, N <= 256, D <= 768; sparseMode 2 = leftUpCausal with
 *     the compressed 2048x2048 mask, 1 = masked; 0 = the mask as given),
 *     aclnnRotaryPositionEmbedding (mode 0 = half; BSND x with BS1D cos/sin,
 *     D even and < 896; out contiguous) */
#define NPU_OPS(X)                                                                                        \
    X(aclnnAdd, (const acl_tensor *self, const acl_tensor *other, const acl_scalar *alpha, acl_tensor *out)) \
    X(aclnnInplaceAdd, (const acl_tensor *self_ref, const acl_tensor *other, const acl_scalar *alpha))    \
    X(aclnnMul, (const acl_tensor *self, const acl_tensor *other, acl_tensor *out))                       \
    X(aclnnInplaceMul, (acl_tensor * self_ref, const acl_tensor *other))                                  \
    X(aclnnMuls, (const acl_tensor *self, const acl_scalar *other, acl_tensor *out))                      \
    X(aclnnInplaceMuls, (acl_tensor * self_ref, const acl_scalar *other))                                 \
    X(aclnnCast, (const acl_tensor *self, int dtype, acl_tensor *out))                                    \
    X(aclnnReduceSum, (const acl_tensor *self, const acl_int_array *dims, bool keep_dims, int dtype,       \
                       acl_tensor *out))                                                                  \
    X(aclnnInplaceCopy, (acl_tensor * self_ref, const acl_tensor *src))                                   \
    X(aclnnInplaceZero, (acl_tensor * self_ref))                                                          \
    X(aclnnArange, (const acl_scalar *start, const acl_scalar *end, const acl_scalar *step, acl_tensor *out)) \
    X(aclnnGeTensor, (const acl_tensor *self, const acl_tensor *other, acl_tensor *out))                  \
    X(aclnnLog, (const acl_tensor *self, acl_tensor *out))                                                \
    X(aclnnExp, (const acl_tensor *self, acl_tensor *out))                                                \
    X(aclnnMatmul, (const acl_tensor *self, const acl_tensor *mat2, acl_tensor *out, int8_t cube_math_type)) \
    X(aclnnLayerNorm, (const acl_tensor *input, const acl_int_array *normalized_shape, const acl_tensor *weight, \
                       const acl_tensor *bias, double eps, acl_tensor *out, acl_tensor *mean_out,           \
                       acl_tensor *rstd_out))                                                             \
    X(aclnnLayerNormBackward,                                                                             \
      (const acl_tensor *grad_out, const acl_tensor *input, const acl_int_array *normalized_shape,         \
       const acl_tensor *mean, const acl_tensor *rstd, const acl_tensor *weight, const acl_tensor *bias,  \
       const acl_bool_array *output_mask, acl_tensor *grad_input, acl_tensor *grad_weight,                \
       acl_tensor *grad_bias))                                                                            \
    X(aclnnRmsNorm, (const acl_tensor *x, const acl_tensor *gamma, double epsilon, const acl_tensor *y_out, \
                     const acl_tensor *rstd_out))                                                         \
    X(aclnnRmsNormGrad, (const acl_tensor *dy, const acl_tensor *x, const acl_tensor *rstd,                \
                         const acl_tensor *gamma, const acl_tensor *dx_out, const acl_tensor *dgamma_out)) \
    X(aclnnGeluV2, (const acl_tensor *x, int64_t approximate, acl_tensor *y))                             \
    X(aclnnGeluBackwardV2, (const acl_tensor *grad_output, const acl_tensor *self, char *approximate,      \
                            acl_tensor *grad_input))                                                      \
    X(aclnnSwiGlu, (const acl_tensor *x, int64_t dim, const acl_tensor *out))                             \
    X(aclnnSwiGluGrad, (const acl_tensor *y_grad, const acl_tensor *x, int64_t dim, const acl_tensor *out)) \
    X(aclnnLogSoftmax, (const acl_tensor *self, int64_t dim, acl_tensor *out))                            \
    X(aclnnGather, (const acl_tensor *self, const int64_t dim, const acl_tensor *index, acl_tensor *out))  \
    X(aclnnInplaceScatterValue, (acl_tensor * self_ref, int64_t dim, const acl_tensor *index,              \
                                 const acl_scalar *value, int64_t reduce))                                \
    X(aclnnEmbedding, (const acl_tensor *weight, const acl_tensor *indices, const acl_tensor *out))       \
    X(aclnnIndexAdd, (const acl_tensor *self, const int64_t dim, const acl_tensor *index,                  \
                      const acl_tensor *source, const acl_scalar *alpha, acl_tensor *out))                 \
    X(aclnnInplaceIndexCopy, (acl_tensor * self_ref, int64_t dim, const acl_tensor *index,                 \
                              const acl_tensor *source))                                                  \
    X(aclnnApplyAdamW,                                                                                    \
      (acl_tensor * var_ref, acl_tensor *m_ref, acl_tensor *v_ref, const acl_tensor *beta1_power,         \
       const acl_tensor *beta2_power, const acl_tensor *lr, const acl_tensor *weight_decay,               \
       const acl_tensor *beta1, const acl_tensor *beta2, const acl_tensor *eps, const acl_tensor *grad,   \
       const acl_tensor *max_grad_norm, bool amsgrad, bool maximize))                                     \
    X(aclnnRotaryPositionEmbedding, (const acl_tensor *x, const acl_tensor *cos, const acl_tensor *sin,    \
                                     int64_t mode, acl_tensor *out))                                      \
    X(aclnnFlashAttentionScore,                                                                           \
      (const acl_tensor *query, const acl_tensor *key, const acl_tensor *value, const acl_tensor *real_shift, \
       const acl_tensor *drop_mask, const acl_tensor *padding_mask, const acl_tensor *atten_mask,         \
       const acl_int_array *prefix, double scale_value, double keep_prob, int64_t pre_tokens,             \
       int64_t next_tokens, int64_t head_num, char *input_layout, int64_t inner_precise,                  \
       int64_t sparse_mode, const acl_tensor *softmax_max_out, const acl_tensor *softmax_sum_out,         \
       const acl_tensor *softmax_out_out, const acl_tensor *attention_out_out))                           \
    X(aclnnFlashAttentionScoreGrad,                                                                       \
      (const acl_tensor *query, const acl_tensor *key, const acl_tensor *value, const acl_tensor *dy,     \
       const acl_tensor *pse_shift, const acl_tensor *drop_mask, const acl_tensor *padding_mask,          \
       const acl_tensor *atten_mask, const acl_tensor *softmax_max, const acl_tensor *softmax_sum,        \
       const acl_tensor *softmax_in, const acl_tensor *attention_in, const acl_int_array *prefix,         \
       double scale_value, double keep_prob, int64_t pre_tokens, int64_t next_tokens, int64_t head_num,   \
       char *input_layout, int64_t inner_precise, int64_t sparse_mode, const acl_tensor *dq_out,          \
       const acl_tensor *dk_out, const acl_tensor *dv_out, const acl_tensor *dpse_out))

/* The first phase of each operator, and the second (same for all). */
#define NPU_OP_PARAMS_(...) (__VA_ARGS__, uint64_t * workspace_size, acl_executor * *executor)
typedef aclnn_status (*npu_op_run_fn)(void *workspace, uint64_t workspace_size, acl_executor *executor,
                                      acl_stream stream);

/* HCCL ("HCCL API reference > communicator management, collective
 * communication": HcclGetRootInfo, HcclCommInitRootInfo, HcclAllReduce,
 * HcclReduceScatter (recvCount per rank), HcclAllGather (sendCount per
 * rank), HcclReduce, HcclBroadcast, HcclSend, HcclRecv, HcclCommDestroy,
 * HcclGetErrorString), in libhccl.so; opened only by --dist hccl. */
#define NPU_HCCL_FUNCS(X)                                                                                 \
    X(hccl_result, HcclGetRootInfo, (hccl_root_info * root_info))                                         \
    X(hccl_result, HcclCommInitRootInfo,                                                                  \
      (uint32_t n_ranks, const hccl_root_info *root_info, uint32_t rank, hccl_comm *comm))                \
    X(hccl_result, HcclAllReduce, (void *send, void *recv, uint64_t count, int dtype, int op, hccl_comm comm, \
                                   acl_stream stream))                                                    \
    X(hccl_result, HcclReduceScatter, (void *send, void *recv, uint64_t recv_count, int dtype, int op,     \
                                       hccl_comm comm, acl_stream stream))                                \
    X(hccl_result, HcclAllGather, (void *send, void *recv, uint64_t send_count, int dtype, hccl_comm comm, \
                                   acl_stream stream))                                                    \
    X(hccl_result, HcclReduce, (void *send, void *recv, uint64_t count, int dtype, int op, uint32_t root,   \
                                hccl_comm comm, acl_stream stream))                                       \
    X(hccl_result, HcclBroadcast, (void *buf, uint64_t count, int dtype, uint32_t root, hccl_comm comm,     \
                                   acl_stream stream))                                                    \
    X(hccl_result, HcclSend, (void *send, uint64_t count, int dtype, uint32_t dest, hccl_comm comm,        \
                              acl_stream stream))                                                         \
    X(hccl_result, HcclRecv, (void *recv, uint64_t count, int dtype, uint32_t src, hccl_comm comm,         \
                              acl_stream stream))                                                         \
    X(hccl_result, HcclCommDestroy, (hccl_comm comm))                                                     \
    X(const char *, HcclGetErrorString, (hccl_result code))

#endif
