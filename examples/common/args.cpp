#include "common/args.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>

#include "latentkv/status.h"

namespace latentkv::cli {

ArgParser::ArgParser(std::string program, std::string summary)
    : program_(std::move(program)), summary_(std::move(summary)) {}

void ArgParser::add_flag(const std::string& name, const std::string& help, bool* out) {
  Option o;
  o.name = name;
  o.help = help;
  o.is_flag = true;
  o.set = [out](const std::string&) {
    *out = true;
    return true;
  };
  options_.push_back(std::move(o));
}

void ArgParser::add_string(const std::string& name, const std::string& metavar,
                           const std::string& help, std::string* out, bool required) {
  Option o{name, metavar, help, required};
  o.default_text = out->empty() ? "" : *out;
  o.set = [out](const std::string& v) {
    *out = v;
    return true;
  };
  options_.push_back(std::move(o));
}

void ArgParser::add_int(const std::string& name, const std::string& metavar,
                        const std::string& help, int64_t* out, bool required) {
  Option o{name, metavar, help, required};
  o.default_text = std::to_string(*out);
  o.set = [out](const std::string& v) {
    char* end = nullptr;
    errno = 0;
    const long long x = std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || errno != 0) return false;
    *out = x;
    return true;
  };
  options_.push_back(std::move(o));
}

void ArgParser::add_double(const std::string& name, const std::string& metavar,
                           const std::string& help, double* out, bool required) {
  Option o{name, metavar, help, required};
  std::ostringstream d;
  d << *out;
  o.default_text = d.str();
  o.set = [out](const std::string& v) {
    char* end = nullptr;
    errno = 0;
    const double x = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || errno != 0 || !std::isfinite(x)) return false;
    *out = x;
    return true;
  };
  options_.push_back(std::move(o));
}

void ArgParser::alias(const std::string& short_name, const std::string& long_name) {
  aliases_.emplace_back(short_name, long_name);
}

ArgParser::Option* ArgParser::find(const std::string& name) {
  std::string target = name;
  for (const auto& [s, l] : aliases_)
    if (s == name) target = l;
  for (auto& o : options_)
    if (o.name == target) return &o;
  return nullptr;
}

const ArgParser::Option* ArgParser::find(const std::string& name) const {
  return const_cast<ArgParser*>(this)->find(name);
}

bool ArgParser::given(const std::string& name) const {
  const Option* o = find(name);
  return o != nullptr && o->seen;
}

std::string ArgParser::help() const {
  std::ostringstream os;
  os << "usage: " << program_;
  for (const auto& o : options_) {
    if (!o.required) continue;
    os << " " << o.name << " " << o.metavar;
  }
  os << " [options]\n\n" << summary_ << "\n\noptions:\n";
  for (const auto& o : options_) {
    std::string lhs = "  " + o.name;
    for (const auto& [s, l] : aliases_)
      if (l == o.name) lhs = "  " + s + ", " + o.name;
    if (!o.is_flag) lhs += " " + o.metavar;
    os << lhs;
    if (lhs.size() < 28) {
      os << std::string(28 - lhs.size(), ' ');
    } else {
      os << "\n" << std::string(28, ' ');
    }
    os << o.help;
    if (o.required) {
      os << " (required)";
    } else if (!o.is_flag && !o.default_text.empty()) {
      os << " (default: " << o.default_text << ")";
    }
    os << "\n";
  }
  os << "  -h, --help                show this help and exit\n";
  if (!epilog_.empty()) os << "\n" << epilog_ << "\n";
  return os.str();
}

int ArgParser::parse(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::cout << help();
      return kExitOk;
    }
    std::string value;
    bool has_inline_value = false;
    if (arg.rfind("--", 0) == 0) {
      const auto eq = arg.find('=');
      if (eq != std::string::npos) {
        value = arg.substr(eq + 1);
        arg = arg.substr(0, eq);
        has_inline_value = true;
      }
    }
    Option* o = find(arg);
    if (o == nullptr) {
      std::cerr << "error: unknown option '" << arg << "' (see " << program_ << " --help)\n";
      return kExitUsage;
    }
    if (!o->is_flag && !has_inline_value) {
      if (i + 1 >= argc) {
        std::cerr << "error: option " << o->name << " needs a value " << o->metavar << "\n";
        return kExitUsage;
      }
      value = argv[++i];
    }
    if (o->is_flag && has_inline_value) {
      std::cerr << "error: flag " << o->name << " takes no value\n";
      return kExitUsage;
    }
    if (!o->set(value)) {
      std::cerr << "error: invalid value '" << value << "' for " << o->name << "\n";
      return kExitUsage;
    }
    o->seen = true;
  }
  for (const auto& o : options_) {
    if (o.required && !o.seen) {
      std::cerr << "error: missing required option " << o.name << " " << o.metavar << " (see "
                << program_ << " --help)\n";
      return kExitUsage;
    }
  }
  return -1;
}

int run_main(const std::function<int()>& body) {
  try {
    return body();
  } catch (...) {
    const Status s = status_from_exception();
    std::fflush(stdout);
    std::cerr << "error: " << s.message() << "\n";
    return kExitFailure;
  }
}

}  // namespace latentkv::cli
