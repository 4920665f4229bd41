#include "latentkv/pipeline/lkv_file.h"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <type_traits>

#include "latentkv/hash.h"
#include "latentkv/status.h"

namespace latentkv {
namespace {

constexpr char kMagic[8] = {'L', 'K', 'V', 'M', 'O', 'D', 'E', 'L'};
constexpr size_t kHeaderBytes = sizeof(kMagic) + sizeof(uint32_t) + sizeof(uint64_t);
constexpr size_t kDigestBytes = 32;

// Appends fields to a byte string (the whole file is a few MB: built in memory, written once).
class Writer {
 public:
  template <typename T>
  void pod(T v) {
    static_assert(std::is_trivially_copyable_v<T>);
    buf_.append(reinterpret_cast<const char*>(&v), sizeof(T));
  }
  void str(const std::string& s) {
    pod(static_cast<uint32_t>(s.size()));
    buf_ += s;
  }
  template <typename T>
  void vec(const std::vector<T>& v) {
    pod(static_cast<uint64_t>(v.size()));
    buf_.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
  }
  std::string& bytes() { return buf_; }

 private:
  std::string buf_;
};

// Reads fields from the payload; running past its end means the writer and reader disagree, which
// (after a good checksum) only a hand-made file can do.
class Reader {
 public:
  Reader(const std::string& data, size_t begin, size_t end, const std::string& path)
      : data_(data), pos_(begin), end_(end), path_(path) {}
  template <typename T>
  T pod() {
    T v;
    std::memcpy(&v, take(sizeof(T)), sizeof(T));
    return v;
  }
  std::string str() {
    const uint32_t n = pod<uint32_t>();
    return std::string(take(n), n);
  }
  template <typename T>
  std::vector<T> vec() {
    const uint64_t n = pod<uint64_t>();
    if (n > (end_ - pos_) / sizeof(T)) fail("an array runs past the end of the payload");
    std::vector<T> v(n);
    std::memcpy(v.data(), take(n * sizeof(T)), n * sizeof(T));
    return v;
  }
  bool at_end() const { return pos_ == end_; }
  [[noreturn]] void fail(const std::string& what) const {
    LKV_THROW(StatusCode::kCorruptData, path_, ": ", what);
  }

 private:
  const char* take(size_t n) {
    if (n > end_ - pos_) fail("a field runs past the end of the payload");
    const char* p = data_.data() + pos_;
    pos_ += n;
    return p;
  }
  const std::string& data_;
  size_t pos_, end_;
  const std::string& path_;
};

void write_quant(Writer& w, const QuantConfig& q) {
  w.pod<int32_t>(q.bits);
  w.pod<int32_t>(q.quant_group);
  w.pod<int32_t>(q.residual);
}

QuantConfig read_quant(Reader& r) {
  QuantConfig q;
  q.bits = r.pod<int32_t>();
  q.quant_group = r.pod<int32_t>();
  q.residual = r.pod<int32_t>();
  return q;
}

void write_factors(Writer& w, const ProjectionFactors& f) {
  for (int v : {f.d_model, f.head_dim, f.num_kv_heads, f.group_size, f.rotation}) w.pod<int32_t>(v);
  w.vec(f.ranks);
  w.vec(f.group_heads);
  w.vec(f.a);
  w.vec(f.b);
  w.vec(f.bias);
}

ProjectionFactors read_factors(Reader& r) {
  ProjectionFactors f;
  for (int* v : {&f.d_model, &f.head_dim, &f.num_kv_heads, &f.group_size, &f.rotation})
    *v = r.pod<int32_t>();
  f.ranks = r.vec<int>();
  f.group_heads = r.vec<int>();
  f.a = r.vec<float>();
  f.b = r.vec<float>();
  f.bias = r.vec<float>();
  return f;
}

void write_folded(Writer& w, const FoldedOutputProjection& o) {
  w.pod<int32_t>(o.d_model);
  w.pod<int32_t>(o.num_qo_heads);
  w.vec(o.head_offsets);
  w.vec(o.w);
  w.vec(o.bias);
}

FoldedOutputProjection read_folded(Reader& r) {
  FoldedOutputProjection o;
  o.d_model = r.pod<int32_t>();
  o.num_qo_heads = r.pod<int32_t>();
  o.head_offsets = r.vec<int>();
  o.w = r.vec<float>();
  o.bias = r.vec<float>();
  return o;
}

std::string serialize_payload(const CompressedModel& m) {
  Writer w;
  const BaseModelIdentity& b = m.base;
  w.str(b.sha256);
  w.str(b.name);
  for (int v : {b.n_layers, b.d_model, b.num_qo_heads, b.num_kv_heads, b.head_dim, b.vocab_size})
    w.pod<int32_t>(v);
  w.pod(static_cast<uint32_t>(m.recipe.size()));
  for (const auto& [k, v] : m.recipe) {
    w.str(k);
    w.str(v);
  }
  write_quant(w, m.key_quant);
  write_quant(w, m.value_quant);
  w.pod(static_cast<uint32_t>(m.layers.size()));
  for (const CompressedLayer& l : m.layers) {
    w.pod(l.key_error);
    w.pod(l.value_error);
    write_factors(w, l.factors.key);
    write_factors(w, l.factors.value);
    w.pod<uint8_t>(l.factors.folded() ? 1 : 0);
    if (l.factors.folded()) write_folded(w, l.factors.folded_output);
  }
  return std::move(w.bytes());
}

CompressedModel parse_payload(Reader& r) {
  CompressedModel m;
  BaseModelIdentity& b = m.base;
  b.sha256 = r.str();
  b.name = r.str();
  for (int* v :
       {&b.n_layers, &b.d_model, &b.num_qo_heads, &b.num_kv_heads, &b.head_dim, &b.vocab_size})
    *v = r.pod<int32_t>();
  const uint32_t recipe_lines = r.pod<uint32_t>();
  for (uint32_t i = 0; i < recipe_lines; ++i) {
    std::string k = r.str();
    m.recipe.emplace_back(std::move(k), r.str());
  }
  m.key_quant = read_quant(r);
  m.value_quant = read_quant(r);
  const uint32_t n_layers = r.pod<uint32_t>();
  if (n_layers != static_cast<uint32_t>(b.n_layers))
    r.fail(str_cat("holds ", n_layers, " layers, its base model has ", b.n_layers));
  m.layers.resize(n_layers);
  for (CompressedLayer& l : m.layers) {
    l.key_error = r.pod<double>();
    l.value_error = r.pod<double>();
    l.factors.key = read_factors(r);
    l.factors.value = read_factors(r);
    const uint8_t folded = r.pod<uint8_t>();
    if (folded > 1) r.fail("bad folded-projection flag");
    if (folded) l.factors.folded_output = read_folded(r);
  }
  if (!r.at_end()) r.fail("unparsed bytes at the end of the payload");
  return m;
}

std::string read_whole_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    LKV_THROW(StatusCode::kNotFound, "compressed model ", path, " does not exist");
  if (std::filesystem::is_directory(path, ec))
    LKV_THROW(StatusCode::kIoError, "cannot read ", path, ": it is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) LKV_THROW(StatusCode::kIoError, "cannot open ", path, ": ", std::strerror(errno));
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) LKV_THROW(StatusCode::kIoError, "cannot read ", path);
  return data;
}

}  // namespace

void save_compressed_model(const CompressedModel& model, const std::string& path) {
  model.validate();
  const std::string payload = serialize_payload(model);
  Writer w;
  w.bytes().append(kMagic, sizeof(kMagic));
  w.pod(kLkvFormatVersion);
  w.pod(static_cast<uint64_t>(payload.size()));
  w.bytes() += payload;
  const std::array<uint8_t, kDigestBytes> digest = [&] {
    Sha256 sha;
    sha.update(w.bytes());
    return sha.digest();
  }();
  w.bytes().append(reinterpret_cast<const char*>(digest.data()), digest.size());

  const std::string tmp = str_cat(path, ".tmp.", getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) LKV_THROW(StatusCode::kIoError, "cannot create ", tmp, ": ", std::strerror(errno));
    out.write(w.bytes().data(), static_cast<std::streamsize>(w.bytes().size()));
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      LKV_THROW(StatusCode::kIoError, "cannot write ", tmp);
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    LKV_THROW(StatusCode::kIoError, "cannot rename ", tmp, " to ", path, ": ",
              std::strerror(errno));
  }
}

CompressedModel load_compressed_model(const std::string& path) {
  const std::string data = read_whole_file(path);
  if (data.size() < sizeof(kMagic) || std::memcmp(data.data(), kMagic, sizeof(kMagic)) != 0)
    LKV_THROW(StatusCode::kCorruptData, path, ": not a latentkv compressed model (.lkv) file");
  if (data.size() < kHeaderBytes)
    LKV_THROW(StatusCode::kCorruptData, path, ": file is truncated (", data.size(),
              " bytes, header incomplete)");
  uint32_t version;
  std::memcpy(&version, data.data() + sizeof(kMagic), sizeof(version));
  if (version != kLkvFormatVersion)
    LKV_THROW(StatusCode::kUnsupported, path, ": .lkv format version ", version,
              ", this build reads version ", kLkvFormatVersion,
              " (re-run latentkv-compress with this build)");
  uint64_t payload;
  std::memcpy(&payload, data.data() + sizeof(kMagic) + sizeof(version), sizeof(payload));
  const uint64_t available = data.size() - kHeaderBytes;
  if (payload > available || available - payload < kDigestBytes)
    LKV_THROW(StatusCode::kCorruptData, path, ": file is truncated (", data.size(),
              " bytes, expected ", kHeaderBytes + payload + kDigestBytes, ")");
  if (available - payload > kDigestBytes)
    LKV_THROW(StatusCode::kCorruptData, path, ": ", available - payload - kDigestBytes,
              " trailing bytes after the checksum");
  const size_t body = kHeaderBytes + payload;
  Sha256 sha;
  sha.update(data.data(), body);
  const std::array<uint8_t, kDigestBytes> digest = sha.digest();
  if (std::memcmp(digest.data(), data.data() + body, kDigestBytes) != 0)
    LKV_THROW(StatusCode::kCorruptData, path, ": checksum mismatch (file corrupted)");

  Reader r(data, kHeaderBytes, body, path);
  CompressedModel m = parse_payload(r);
  try {
    m.validate();
  } catch (const Error& e) {
    LKV_THROW(StatusCode::kCorruptData, path, ": inconsistent content: ", e.what());
  }
  return m;
}

CompressedModel load_compressed_model_for(const std::string& path, const std::string& gguf_sha256,
                                          const LlamaConfig& config) {
  CompressedModel m = load_compressed_model(path);
  check_base_model(m, gguf_sha256, config, path);
  return m;
}

}  // namespace latentkv
