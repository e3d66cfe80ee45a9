// Atomic file writes via a temporary file in the target directory and rename(2).
#include "qforge/data/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "qforge/tensor/tensor.h"

namespace qforge::data {
namespace {

[[noreturn]] void Fail(const std::string& path, const std::string& what, int err) {
  throw Error("cannot write '" + path + "': " + what + ": " + std::strerror(err));
}

}  // namespace

void WriteFileAtomic(const std::string& path, std::initializer_list<std::string_view> parts) {
  if (path.empty()) throw Error("cannot write a file with an empty name");
  // mkstemp needs a mutable template; the temporary lives next to the target so that the final
  // rename stays within one file system (and is therefore atomic).
  std::string tmpl = path + ".tmp-XXXXXX";
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  int fd = ::mkstemp(name.data());
  if (fd < 0) Fail(path, "cannot create a temporary file", errno);
  const std::string tmp(name.data());
  auto fail_and_clean = [&](const std::string& what, int err) {
    ::close(fd);
    ::unlink(tmp.c_str());
    Fail(path, what, err);
  };
  for (std::string_view part : parts) {
    const char* p = part.data();
    size_t left = part.size();
    while (left > 0) {
      ssize_t n = ::write(fd, p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        fail_and_clean("write failed", errno);
      }
      p += n;
      left -= static_cast<size_t>(n);
    }
  }
  if (::fchmod(fd, 0644) != 0) fail_and_clean("chmod failed", errno);
  if (::fsync(fd) != 0) fail_and_clean("fsync failed", errno);
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    Fail(path, "close failed", err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    Fail(path, "rename failed", err);
  }
}

}  // namespace qforge::data
