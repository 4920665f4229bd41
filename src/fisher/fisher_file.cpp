// Text file format of Fisher scores (documented in latentkv/fisher/fisher_scores.h).
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "latentkv/fisher/fisher_scores.h"
#include "latentkv/status.h"

namespace latentkv {

namespace {

constexpr const char* kMagic = "latentkv-fisher";
constexpr int kVersion = 1;

std::vector<std::string> split_fields(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> fields;
  std::string f;
  while (in >> f) fields.push_back(f);
  return fields;
}

std::optional<int64_t> parse_int(const std::string& s) {
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || end != s.c_str() + s.size()) return std::nullopt;
  return v;
}

std::optional<double> parse_double(const std::string& s) {
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s.c_str(), &end);
  if (errno == ERANGE || end != s.c_str() + s.size()) return std::nullopt;
  return v;
}

class Parser {
 public:
  explicit Parser(std::string path) : path_(std::move(path)) {}

  [[noreturn]] void fail(int line, const std::string& what) const {
    LKV_THROW(StatusCode::kCorruptData, "Fisher scores file ", path_, " line ", line, ": ", what);
  }

  int64_t integer(int line, const std::string& s, const char* what) const {
    const auto v = parse_int(s);
    if (!v) fail(line, str_cat(what, " '", s, "' is not an integer"));
    return *v;
  }

  double score(int line, const std::string& s) const {
    const auto v = parse_double(s);
    if (!v) fail(line, str_cat("score '", s, "' is not a number"));
    if (!std::isfinite(*v) || *v < 0) {
      fail(line, str_cat("score ", s, " is not a finite non-negative number"));
    }
    return *v;
  }

 private:
  std::string path_;
};

}  // namespace

void save_fisher_scores(const FisherScores& scores, const std::string& path) {
  scores.validate();
  LKV_CHECK_ARG(scores.model_id.find_first_of(" \t\r\n") == std::string::npos, "model id '",
                scores.model_id, "' must not contain white space");
  const std::string tmp = str_cat(path, ".tmp.", getpid());
  {
    std::ofstream out(tmp);
    if (!out) LKV_THROW(StatusCode::kIoError, "cannot write ", tmp);
    out.precision(17);
    out << kMagic << ' ' << kVersion << '\n';
    out << "model " << (scores.model_id.empty() ? "-" : scores.model_id) << '\n';
    out << "reduction " << fisher_reduction_name(scores.reduction) << '\n';
    out << "samples " << scores.num_samples << '\n';
    out << "layers " << scores.n_layers() << " kv_heads " << scores.num_kv_heads << '\n';
    out << "# layer kind score" << (scores.has_head_scores() ? " [score per KV head]" : "") << '\n';
    for (int l = 0; l < scores.n_layers(); ++l) {
      for (int kind = 0; kind < 2; ++kind) {
        out << l << (kind == 0 ? " k " : " v ") << (kind == 0 ? scores.key : scores.value)[l];
        if (scores.has_head_scores()) {
          const std::vector<double>& heads = kind == 0 ? scores.key_heads : scores.value_heads;
          for (int h = 0; h < scores.num_kv_heads; ++h) {
            out << ' ' << heads[static_cast<size_t>(l) * scores.num_kv_heads + h];
          }
        }
        out << '\n';
      }
    }
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      LKV_THROW(StatusCode::kIoError, "cannot write ", tmp);
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    LKV_THROW(StatusCode::kIoError, "cannot rename ", tmp, " to ", path);
  }
}

FisherScores load_fisher_scores(const std::string& path) {
  std::ifstream in(path);
  if (!in) LKV_THROW(StatusCode::kNotFound, "Fisher scores file ", path, " cannot be opened");
  const Parser p(path);
  FisherScores s;
  bool have_magic = false, have_model = false, have_reduction = false, have_samples = false;
  int n_layers = -1;
  // Per-layer scores as read: [layer][kind] = fields after "<layer> <kind>".
  std::vector<std::vector<std::vector<double>>> rows;
  int head_columns = -1;  // 0 or num_kv_heads, fixed by the first data line
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    const std::vector<std::string> f = split_fields(line);
    if (f.empty() || f[0][0] == '#') continue;
    if (!have_magic) {
      if (f[0] != kMagic || f.size() != 2) {
        p.fail(lineno, str_cat("expected '", kMagic, " <version>', not a Fisher scores file"));
      }
      const int64_t version = p.integer(lineno, f[1], "version");
      if (version > kVersion) {
        LKV_THROW(StatusCode::kUnsupported, "Fisher scores file ", path, " has format version ",
                  version, "; this build reads version ", kVersion);
      }
      if (version < 1) p.fail(lineno, str_cat("bad format version ", version));
      have_magic = true;
      continue;
    }
    const std::string& key = f[0];
    if (key == "model" || key == "reduction" || key == "samples") {
      if (n_layers >= 0) p.fail(lineno, str_cat("'", key, "' after the layers line"));
      if (f.size() != 2) p.fail(lineno, str_cat("'", key, "' takes one value"));
      bool& seen = key == "model" ? have_model : key == "reduction" ? have_reduction : have_samples;
      if (seen) p.fail(lineno, str_cat("duplicate '", key, "' line"));
      seen = true;
      if (key == "model") {
        s.model_id = f[1] == "-" ? "" : f[1];
      } else if (key == "reduction") {
        if (f[1] == "mean_square" || f[1] == "rms") {
          s.reduction = parse_fisher_reduction(f[1]);
        } else {
          p.fail(lineno, str_cat("unknown reduction '", f[1], "' (mean_square or rms)"));
        }
      } else {
        s.num_samples = p.integer(lineno, f[1], "samples");
        if (s.num_samples < 0) p.fail(lineno, "samples must be >= 0");
      }
      continue;
    }
    if (key == "layers") {
      if (n_layers >= 0) p.fail(lineno, "duplicate 'layers' line");
      if (f.size() != 4 || f[2] != "kv_heads") {
        p.fail(lineno, "expected 'layers <n_layers> kv_heads <num_kv_heads>'");
      }
      const int64_t nl = p.integer(lineno, f[1], "n_layers");
      const int64_t heads = p.integer(lineno, f[3], "kv_heads");
      if (nl < 1 || nl > 100000) p.fail(lineno, str_cat("n_layers ", nl, " out of range"));
      if (heads < 1 || heads > 100000) p.fail(lineno, str_cat("kv_heads ", heads, " out of range"));
      if (!have_model || !have_reduction || !have_samples) {
        p.fail(lineno, "'model', 'reduction' and 'samples' must come before 'layers'");
      }
      n_layers = static_cast<int>(nl);
      s.num_kv_heads = static_cast<int>(heads);
      rows.assign(n_layers, std::vector<std::vector<double>>(2));
      continue;
    }
    if (n_layers < 0) p.fail(lineno, str_cat("unexpected '", key, "' before the 'layers' line"));
    // Data line: <layer> <k|v> <score> [head scores].
    const int64_t layer = p.integer(lineno, f[0], "layer");
    if (layer < 0 || layer >= n_layers) {
      p.fail(lineno, str_cat("layer ", layer, " outside [0, ", n_layers, ")"));
    }
    if (f.size() < 3 || (f[1] != "k" && f[1] != "v")) {
      p.fail(lineno, "expected '<layer> <k|v> <score> [<score per KV head>...]'");
    }
    const int columns = static_cast<int>(f.size()) - 3;
    if (columns != 0 && columns != s.num_kv_heads) {
      p.fail(lineno, str_cat(columns, " per-head scores, expected 0 or ", s.num_kv_heads));
    }
    if (head_columns >= 0 && columns != head_columns) {
      p.fail(lineno, "per-head scores must be given on every line or on none");
    }
    head_columns = columns;
    std::vector<double>& row = rows[layer][f[1] == "v" ? 1 : 0];
    if (!row.empty()) p.fail(lineno, str_cat("duplicate line for layer ", layer, " ", f[1]));
    for (size_t i = 2; i < f.size(); ++i) row.push_back(p.score(lineno, f[i]));
  }
  if (!have_magic) p.fail(lineno, "empty file, not a Fisher scores file");
  if (n_layers < 0) p.fail(lineno, "missing 'layers' line");
  for (int l = 0; l < n_layers; ++l) {
    for (int kind = 0; kind < 2; ++kind) {
      const std::vector<double>& row = rows[l][kind];
      if (row.empty()) p.fail(lineno, str_cat("no ", kind == 0 ? "k" : "v", " line for layer ", l));
      (kind == 0 ? s.key : s.value).push_back(row[0]);
      std::vector<double>& heads = kind == 0 ? s.key_heads : s.value_heads;
      heads.insert(heads.end(), row.begin() + 1, row.end());
    }
  }
  return s;
}

}  // namespace latentkv
