#include "latentkv/eval/text_file.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "latentkv/status.h"
#include "latentkv/tokenizer/unicode.h"

namespace latentkv {

std::string read_text_file(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) LKV_THROW(StatusCode::kNotFound, "text file ", path, " does not exist");
    LKV_THROW(StatusCode::kIoError, "cannot stat text file ", path, ": ", std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) LKV_THROW(StatusCode::kIoError, path, " is not a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in) LKV_THROW(StatusCode::kIoError, "cannot open text file ", path);
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) LKV_THROW(StatusCode::kIoError, "error while reading text file ", path);
  std::string text = buf.str();
  LKV_CHECK_ARG(!text.empty(), "text file ", path, " is empty");
  unicode::check_utf8(text, str_cat("text file ", path));
  return text;
}

}  // namespace latentkv
