#include "latentkv/compress/calib_stats.h"

#include <Eigen/Core>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "latentkv/hash.h"
#include "latentkv/status.h"

namespace latentkv {
namespace {

// Rows converted to fp64 per rank update: large enough for an efficient SYRK, small enough that
// the fp64 copy stays in cache-friendly sizes (512 × 4096 × 8 B = 16 MiB at Llama-7B width).
constexpr int64_t kChunkRows = 512;

void check_finite_rows(const Eigen::Ref<const MatrixRM>& x, const char* what) {
  if (!x.allFinite()) LKV_THROW(StatusCode::kInvalidArgument, what, " has a NaN or Inf entry");
}

// ---- File format (host byte order; all supported hosts are little-endian) ----
//   char[8]  magic "LKVGRAM\0"
//   u32      version (1)
//   u32      n_layers, u32 d_model
//   u32 len + bytes   model_key;  u32 len + bytes   data_key
//   per layer: i64 tokens, then the lower triangle of Γ column by column (column j holds rows
//              j..d_model-1), d_model·(d_model+1)/2 f64
//   u8[32]   SHA-256 of every byte before it
constexpr char kMagic[8] = {'L', 'K', 'V', 'G', 'R', 'A', 'M', '\0'};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kMaxLayers = 1u << 16;
constexpr uint32_t kMaxDModel = 1u << 16;
constexpr uint32_t kMaxKeyBytes = 1u << 16;

struct FileCloser {
  void operator()(FILE* f) const {
    if (f) std::fclose(f);
  }
};
using File = std::unique_ptr<FILE, FileCloser>;

class Writer {
 public:
  Writer(FILE* f, std::string path) : f_(f), path_(std::move(path)) {}
  void bytes(const void* p, size_t n) {
    if (n == 0) return;
    sha_.update(p, n);
    if (std::fwrite(p, 1, n, f_) != n)
      LKV_THROW(StatusCode::kIoError, "cannot write ", path_, ": ", std::strerror(errno));
  }
  template <typename T>
  void pod(const T& v) {
    bytes(&v, sizeof(T));
  }
  void finish() {
    const std::array<uint8_t, 32> digest = sha_.digest();
    if (std::fwrite(digest.data(), 1, digest.size(), f_) != digest.size())
      LKV_THROW(StatusCode::kIoError, "cannot write ", path_, ": ", std::strerror(errno));
  }

 private:
  FILE* f_;
  std::string path_;
  Sha256 sha_;
};

class Reader {
 public:
  Reader(FILE* f, std::string path) : f_(f), path_(std::move(path)) {}
  void bytes(void* p, size_t n) {
    if (n == 0) return;
    raw(p, n);
    sha_.update(p, n);
  }
  template <typename T>
  T pod() {
    T v;
    bytes(&v, sizeof(T));
    return v;
  }
  std::string key(const char* name) {
    const uint32_t len = pod<uint32_t>();
    if (len > kMaxKeyBytes)
      LKV_THROW(StatusCode::kCorruptData, path_, ": ", name, " length ", len, " exceeds ",
                kMaxKeyBytes);
    std::string s(len, '\0');
    bytes(s.data(), len);
    return s;
  }
  void verify_checksum() {
    std::array<uint8_t, 32> stored;
    raw(stored.data(), stored.size());
    if (stored != sha_.digest())
      LKV_THROW(StatusCode::kCorruptData, path_, ": checksum mismatch (file corrupted)");
    if (std::fgetc(f_) != EOF)
      LKV_THROW(StatusCode::kCorruptData, path_, ": trailing bytes after the checksum");
  }

 private:
  void raw(void* p, size_t n) {
    if (std::fread(p, 1, n, f_) != n) {
      if (std::ferror(f_))
        LKV_THROW(StatusCode::kIoError, "cannot read ", path_, ": ", std::strerror(errno));
      LKV_THROW(StatusCode::kCorruptData, path_, ": file is truncated");
    }
  }
  FILE* f_;
  std::string path_;
  Sha256 sha_;
};

}  // namespace

LayerGram::LayerGram(int d_model) {
  LKV_CHECK_ARG(d_model > 0, "LayerGram: d_model must be positive, got ", d_model);
  lower_ = Eigen::MatrixXd::Zero(d_model, d_model);
}

void LayerGram::accumulate(const Eigen::Ref<const MatrixRM>& x) {
  LKV_CHECK_ARG(d_model() > 0, "LayerGram: accumulate into default-constructed statistics");
  LKV_CHECK_ARG(x.cols() == d_model(), "LayerGram: chunk has ", x.cols(),
                " columns, expected d_model ", d_model());
  check_finite_rows(x, "LayerGram: input chunk");
  Eigen::MatrixXd xt(d_model(), std::min<int64_t>(kChunkRows, x.rows()));
  for (int64_t r0 = 0; r0 < x.rows(); r0 += kChunkRows) {
    const int64_t n = std::min<int64_t>(kChunkRows, x.rows() - r0);
    // Column-major xᵀ block: each token a column, so rankUpdate computes Σ x_tᵀ x_t.
    xt.leftCols(n) = x.middleRows(r0, n).transpose().cast<double>();
    lower_.selfadjointView<Eigen::Lower>().rankUpdate(xt.leftCols(n));
  }
  tokens_ += x.rows();
}

void LayerGram::accumulate(const float* x, int64_t n) {
  LKV_CHECK_ARG(n >= 0 && (x != nullptr || n == 0), "LayerGram: bad chunk pointer or size");
  if (n == 0) return;
  accumulate(Eigen::Map<const MatrixRM>(x, n, d_model()));
}

LayerGram& LayerGram::operator+=(const LayerGram& other) {
  LKV_CHECK_ARG(other.d_model() == d_model(), "LayerGram: cannot merge d_model ", other.d_model(),
                " into d_model ", d_model());
  lower_.triangularView<Eigen::Lower>() += other.lower_;
  tokens_ += other.tokens_;
  return *this;
}

Eigen::MatrixXd LayerGram::gram() const {
  Eigen::MatrixXd g = lower_.selfadjointView<Eigen::Lower>();
  return g;
}

LayerGram LayerGram::from_gram(const Eigen::MatrixXd& gram, int64_t tokens) {
  LKV_CHECK_ARG(gram.rows() == gram.cols() && gram.rows() > 0, "LayerGram: Gram is ", gram.rows(),
                "x", gram.cols(), ", expected a non-empty square matrix");
  LKV_CHECK_ARG(tokens >= 0, "LayerGram: negative token count ", tokens);
  LayerGram out(static_cast<int>(gram.rows()));
  out.lower_.triangularView<Eigen::Lower>() = gram;
  out.tokens_ = tokens;
  return out;
}

CrossGram::CrossGram(int d_model) {
  LKV_CHECK_ARG(d_model > 0, "CrossGram: d_model must be positive, got ", d_model);
  cross_ = Eigen::MatrixXd::Zero(d_model, d_model);
}

void CrossGram::accumulate(const Eigen::Ref<const MatrixRM>& x_tilde,
                           const Eigen::Ref<const MatrixRM>& x) {
  LKV_CHECK_ARG(d_model() > 0, "CrossGram: accumulate into default-constructed statistics");
  LKV_CHECK_ARG(x_tilde.rows() == x.rows() && x_tilde.cols() == d_model() && x.cols() == d_model(),
                "CrossGram: chunks are ", x_tilde.rows(), "x", x_tilde.cols(), " and ", x.rows(),
                "x", x.cols(), ", expected two [n, ", d_model(), "]");
  check_finite_rows(x_tilde, "CrossGram: compressed-model chunk");
  check_finite_rows(x, "CrossGram: original-model chunk");
  for (int64_t r0 = 0; r0 < x.rows(); r0 += kChunkRows) {
    const int64_t n = std::min<int64_t>(kChunkRows, x.rows() - r0);
    const Eigen::MatrixXd a = x_tilde.middleRows(r0, n).cast<double>();
    const Eigen::MatrixXd b = x.middleRows(r0, n).cast<double>();
    cross_.noalias() += a.transpose() * b;
  }
  tokens_ += x.rows();
}

CrossGram& CrossGram::operator+=(const CrossGram& other) {
  LKV_CHECK_ARG(other.d_model() == d_model(), "CrossGram: cannot merge d_model ", other.d_model(),
                " into d_model ", d_model());
  cross_ += other.cross_;
  tokens_ += other.tokens_;
  return *this;
}

CalibStats CalibStats::empty(int n_layers, int d_model) {
  LKV_CHECK_ARG(n_layers > 0, "CalibStats: n_layers must be positive, got ", n_layers);
  CalibStats s;
  s.layers.assign(n_layers, LayerGram(d_model));
  return s;
}

CalibStats& CalibStats::operator+=(const CalibStats& other) {
  LKV_CHECK_ARG(other.n_layers() == n_layers(), "CalibStats: cannot merge ", other.n_layers(),
                " layers into ", n_layers());
  for (int l = 0; l < n_layers(); ++l) layers[l] += other.layers[l];
  return *this;
}

void CalibStats::check_shape(int expect_layers, int expect_d_model) const {
  LKV_CHECK_ARG(n_layers() == expect_layers, "calibration statistics have ", n_layers(),
                " layers, the model has ", expect_layers);
  for (int l = 0; l < n_layers(); ++l)
    LKV_CHECK_ARG(layers[l].d_model() == expect_d_model, "calibration statistics of layer ", l,
                  " have d_model ", layers[l].d_model(), ", the model has ", expect_d_model);
}

void CalibStats::save(const std::string& path) const {
  LKV_CHECK_ARG(n_layers() > 0, "CalibStats::save: no layers");
  const int d = d_model();
  LKV_CHECK_ARG(d > 0, "CalibStats::save: layers have no width (default-constructed)");
  check_shape(n_layers(), d);
  LKV_CHECK_ARG(model_key.size() <= kMaxKeyBytes && data_key.size() <= kMaxKeyBytes,
                "CalibStats::save: key longer than ", kMaxKeyBytes, " bytes");
  const std::string tmp = path + ".tmp";
  {
    File f(std::fopen(tmp.c_str(), "wb"));
    if (!f) LKV_THROW(StatusCode::kIoError, "cannot create ", tmp, ": ", std::strerror(errno));
    Writer w(f.get(), tmp);
    w.bytes(kMagic, sizeof(kMagic));
    w.pod(kVersion);
    w.pod(static_cast<uint32_t>(n_layers()));
    w.pod(static_cast<uint32_t>(d));
    for (const std::string* key : {&model_key, &data_key}) {
      w.pod(static_cast<uint32_t>(key->size()));
      w.bytes(key->data(), key->size());
    }
    for (const LayerGram& layer : layers) {
      w.pod(layer.tokens());
      const Eigen::MatrixXd g = layer.gram();
      for (int j = 0; j < d; ++j) w.bytes(g.col(j).data() + j, sizeof(double) * (d - j));
    }
    w.finish();
    if (std::fflush(f.get()) != 0)
      LKV_THROW(StatusCode::kIoError, "cannot write ", tmp, ": ", std::strerror(errno));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    LKV_THROW(StatusCode::kIoError, "cannot rename ", tmp, " to ", path, ": ",
              std::strerror(errno));
}

CalibStats CalibStats::load(const std::string& path) {
  File f(std::fopen(path.c_str(), "rb"));
  if (!f) {
    if (errno == ENOENT) LKV_THROW(StatusCode::kNotFound, "no calibration statistics at ", path);
    LKV_THROW(StatusCode::kIoError, "cannot open ", path, ": ", std::strerror(errno));
  }
  Reader r(f.get(), path);
  char magic[sizeof(kMagic)];
  r.bytes(magic, sizeof(magic));
  if (std::memcmp(magic, kMagic, sizeof(kMagic)) != 0)
    LKV_THROW(StatusCode::kCorruptData, path, ": not a latentkv calibration statistics file");
  const uint32_t version = r.pod<uint32_t>();
  if (version != kVersion)
    LKV_THROW(StatusCode::kUnsupported, path, ": format version ", version,
              " (this build reads version ", kVersion, ")");
  const uint32_t n_layers = r.pod<uint32_t>();
  const uint32_t d = r.pod<uint32_t>();
  if (n_layers == 0 || n_layers > kMaxLayers || d == 0 || d > kMaxDModel)
    LKV_THROW(StatusCode::kCorruptData, path, ": implausible header (", n_layers,
              " layers, d_model ", d, ")");
  CalibStats s;
  s.model_key = r.key("model key");
  s.data_key = r.key("data key");
  s.layers.reserve(n_layers);
  // Only the lower triangle is read; the upper stays zero and is ignored by from_gram().
  Eigen::MatrixXd g = Eigen::MatrixXd::Zero(d, d);
  for (uint32_t l = 0; l < n_layers; ++l) {
    const int64_t tokens = r.pod<int64_t>();
    if (tokens < 0)
      LKV_THROW(StatusCode::kCorruptData, path, ": layer ", l, " has ", tokens, " tokens");
    for (uint32_t j = 0; j < d; ++j) r.bytes(g.col(j).data() + j, sizeof(double) * (d - j));
    if (!g.allFinite())
      LKV_THROW(StatusCode::kCorruptData, path, ": layer ", l, " has non-finite Gram entries");
    s.layers.push_back(LayerGram::from_gram(g, tokens));
  }
  r.verify_checksum();
  return s;
}

}  // namespace latentkv
