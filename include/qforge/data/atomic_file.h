// Atomic file writes: write to a temporary file next to the target, then rename over it.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

namespace qforge::data {

// Writes the concatenation of `parts` to `path` so that readers see either the old file (or
// none) or the complete new one, never a partial file: the bytes go to a temporary file in the
// same directory ("<path>.tmp-XXXXXX"), which is flushed to disk and then renamed to `path`.
// On any failure the temporary file is removed and qforge::Error names `path` and the reason.
// The new file gets mode 0644.
void WriteFileAtomic(const std::string& path, std::initializer_list<std::string_view> parts);

inline void WriteFileAtomic(const std::string& path, std::string_view bytes) {
  WriteFileAtomic(path, {bytes});
}

}  // namespace qforge::data
