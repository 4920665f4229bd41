// Where the compression pipeline keeps its on-disk caches (calibration statistics, Fisher scores).
//
// Resolution order, first match wins:
//   1. $LATENTKV_CACHE_DIR
//   2. $XDG_CACHE_HOME/latentkv
//   3. $HOME/.cache/latentkv
// Cache files are named by a SHA-256 of everything that determines their content (model file,
// calibration text, window settings), so a stale entry is never picked up; deleting the
// directory is always safe.
#pragma once

#include <string>

namespace latentkv {

/// The cache directory from the environment (see above); not created. Throws
/// Error(kNotFound) when none of the three variables is set.
std::string cache_dir();

/// Creates `dir` and its parents when missing. Throws Error(kIoError) when that fails or `dir`
/// exists but is not a directory.
void ensure_directory(const std::string& dir);

/// `dir`/`<sha256 of key>``suffix`: the file that caches the content identified by `key`.
std::string cache_file_path(const std::string& dir, const std::string& key,
                            const std::string& suffix);

}  // namespace latentkv
