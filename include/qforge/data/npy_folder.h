// Folders of .npy files as samples for models whose inputs are not images, with one or
// several inputs.
//
// Layout: one sample per file. For a model with ONE input the files may lie directly in the
// folder (DIR/*.npy) or in a subfolder named after the input. For SEVERAL inputs there is one
// subfolder per graph input, named exactly like the input or like its file-name-safe form
// (characters other than [A-Za-z0-9._-] replaced by '_'); the k-th file (in file-name byte
// order) of every subfolder together form sample k, so all subfolders must hold the same number
// of .npy files. Example for inputs "ids" and "mask":
//   calib/ids/000.npy  calib/ids/001.npy  calib/mask/000.npy  calib/mask/001.npy
#pragma once

#include <map>
#include <string>
#include <vector>

#include "qforge/tensor/tensor.h"

namespace qforge::data {

class NpyFolder {
 public:
  // Finds each input's files. Throws qforge::Error naming the folder when it is missing, an
  // input has no folder (several inputs) or no files, or the file counts differ.
  NpyFolder(const std::string& dir, const std::vector<std::string>& inputs);

  int64_t size() const { return size_; }
  // Reads sample i: each input's i-th file (ReadNpy errors name the file).
  std::map<std::string, Tensor> Sample(int64_t i) const;
  // The files of one input, in sample order.
  const std::vector<std::string>& files(const std::string& input) const { return files_.at(input); }

 private:
  std::map<std::string, std::vector<std::string>> files_;
  int64_t size_ = 0;
};

}  // namespace qforge::data
