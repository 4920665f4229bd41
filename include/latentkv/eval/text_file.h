// Reading evaluation / prompt text files with the checks every CLI needs.
#pragma once

#include <string>

namespace latentkv {

/// The whole content of a UTF-8 text file. Throws Error with a one-line message that names the
/// file: kNotFound when it does not exist, kIoError when it cannot be read (e.g. a directory),
/// kInvalidArgument when it is empty or not valid UTF-8 (with the offset of the first bad byte).
std::string read_text_file(const std::string& path);

}  // namespace latentkv
