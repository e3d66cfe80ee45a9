// Folders of .npy samples, one subfolder per model input (see npy_folder.h for the layout).
#include "qforge/data/npy_folder.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "qforge/data/npy.h"

namespace qforge::data {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> NpyFiles(const fs::path& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file() && e.path().extension() == ".npy") files.push_back(e.path().string());
  if (ec) throw Error("cannot list '" + dir.string() + "': " + ec.message());
  std::sort(files.begin(), files.end());
  return files;
}

std::string SafeName(const std::string& name) {
  std::string s = name;
  for (char& c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) c = '_';
  return s;
}

}  // namespace

NpyFolder::NpyFolder(const std::string& dir, const std::vector<std::string>& inputs) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error("'" + dir + "' is not a directory");
  if (inputs.empty()) throw Error("npy folder '" + dir + "': the model has no inputs");
  for (const std::string& input : inputs) {
    fs::path sub;
    for (const std::string& name : {input, SafeName(input)}) {
      if (name.empty() || name == "." || name == "..") continue;
      if (fs::is_directory(fs::path(dir) / name, ec)) {
        sub = fs::path(dir) / name;
        break;
      }
    }
    std::vector<std::string> files;
    if (!sub.empty()) {
      files = NpyFiles(sub);
    } else if (inputs.size() == 1) {
      files = NpyFiles(dir);
    } else {
      throw Error("npy folder '" + dir + "' has no subfolder '" + SafeName(input) +
                  "' for model input '" + input +
                  "' (a model with several inputs needs one "
                  "subfolder of .npy files per input)");
    }
    if (files.empty())
      throw Error("npy folder '" + (sub.empty() ? dir : sub.string()) +
                  "' holds no .npy files for input '" + input + "'");
    if (!files_.empty() && static_cast<int64_t>(files.size()) != size_)
      throw Error("npy folder '" + dir + "': input '" + input + "' has " +
                  std::to_string(files.size()) + " files, input '" + files_.begin()->first +
                  "' has " + std::to_string(size_) + " (one file per sample for every input)");
    size_ = static_cast<int64_t>(files.size());
    files_[input] = std::move(files);
  }
}

std::map<std::string, Tensor> NpyFolder::Sample(int64_t i) const {
  if (i < 0 || i >= size_) throw Error("npy folder: sample " + std::to_string(i) + " out of range");
  std::map<std::string, Tensor> out;
  for (const auto& [input, files] : files_) out[input] = ReadNpy(files[static_cast<size_t>(i)]);
  return out;
}

}  // namespace qforge::data
