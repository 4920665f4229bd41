// The compressed model file (.lkv): a CompressedModel on disk, loaded together with the GGUF it was
// made from (design §3, issue 4).
//
// Layout (little-endian; every supported host is):
//   char[8]  magic "LKVMODEL"
//   u32      format version (kLkvFormatVersion)
//   u64      payload size in bytes
//   payload:
//     base model:  str sha256, str name, i32 n_layers, d_model, num_qo_heads, num_kv_heads,
//                  head_dim, vocab_size
//     recipe:      u32 count, then count × (str key, str value)
//     quant:       key then value: i32 bits, quant_group, residual
//     u32 n_layers, then per layer:
//       f64 key_error, f64 value_error
//       key factors, value factors: i32 d_model, head_dim, num_kv_heads, group_size, rotation;
//                  vec<i32> ranks; vec<i32> group_heads; vec<f32> a; vec<f32> b; vec<f32> bias
//       u8 folded; when 1: i32 d_model, num_qo_heads; vec<i32> head_offsets; vec<f32> w;
//                  vec<f32> bias
//   u8[32]   SHA-256 of every byte before it
// where str = u32 length + bytes and vec<T> = u64 count + count × T.
// The payload size lets a reader tell a truncated file from a corrupted one before it parses
// anything; the checksum covers the header too, so any flipped bit is caught.
#pragma once

#include <cstdint>
#include <string>

#include "latentkv/pipeline/compressed_model.h"

namespace latentkv {

/// The version this build writes and the only one it reads.
inline constexpr uint32_t kLkvFormatVersion = 1;

/// Writes `model` (validate()d first) to `path` through a temporary file and a rename. Throws
/// Error(kInvalidArgument) for an inconsistent model, Error(kIoError) when writing fails.
void save_compressed_model(const CompressedModel& model, const std::string& path);

/// Reads a file written by save_compressed_model(). Every error is one line naming the file:
/// kNotFound (no file), kIoError (unreadable), kCorruptData (not an .lkv file, truncated, trailing
/// bytes, checksum mismatch, or content that fails CompressedModel::validate()), kUnsupported (a
/// format version other than kLkvFormatVersion).
CompressedModel load_compressed_model(const std::string& path);

/// Opens `path` and checks it against the base model before anything else is loaded: load, then
/// check_base_model(). Throws as both do.
CompressedModel load_compressed_model_for(const std::string& path, const std::string& gguf_sha256,
                                          const LlamaConfig& config);

}  // namespace latentkv
