#include "attention/split_planner.h"
#include "latentkv/attention/value_projection.h"

namespace latentkv {

Status value_up_projection_is_supported(const ValueUpProjectionParams& p) {
  const auto bad = [](auto&&... a) {
    return Status(StatusCode::kInvalidArgument, str_cat("value_up_projection: ", a...));
  };
  if (p.batch_size < 1 || p.num_qo_heads < 1 || p.num_kv_heads < 1 || p.head_dim < 1 ||
      p.rank_v < 1)
    return bad("sizes must be positive");
  if (p.num_qo_heads % p.num_kv_heads) return bad("num_qo_heads is not a multiple of num_kv_heads");
  if (p.group_size < 1 || p.num_kv_heads % p.group_size)
    return bad("group_size does not divide num_kv_heads");
  if (!p.group_heads || !p.b_v || !p.z || !p.o) return bad("a required pointer is null");
  if (p.z_stride_batch < int64_t{p.num_qo_heads} * p.rank_v ||
      p.o_stride_batch < int64_t{p.num_qo_heads} * p.head_dim)
    return bad("z / o batch strides are smaller than one row");
  if (p.heads_in_order && p.num_qo_heads != p.num_kv_heads)
    return Status(StatusCode::kUnsupported,
                  "value_up_projection: heads_in_order needs MHA (one query head per KV head)");
  return Status::Ok();
}

int64_t value_up_projection_workspace_bytes(const ValueUpProjectionParams& p) {
  return detail::align256(3 * int64_t{p.num_qo_heads} * 8);
}

Status folded_output_is_supported(const FoldedOutputParams& p) {
  const auto bad = [](auto&&... a) {
    return Status(StatusCode::kInvalidArgument, str_cat("folded_output: ", a...));
  };
  if (p.batch_size < 1 || p.d_model < 1 || p.num_qo_heads < 1 || p.rank_v < 1)
    return bad("sizes must be positive");
  if (!p.w_o_folded || !p.z || !p.out) return bad("a required pointer is null");
  if (p.z_stride_batch < int64_t{p.num_qo_heads} * p.rank_v || p.out_stride_batch < p.d_model)
    return bad("z / out batch strides are smaller than one row");
  return Status::Ok();
}

}  // namespace latentkv
