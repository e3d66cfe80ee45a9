// Folders of images (PNG, JPEG, BMP, via stb_image) as calibration / evaluation samples:
// decode, convert to gray or RGB, resize bilinearly and normalize per channel into NCHW floats.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qforge/tensor/tensor.h"

namespace qforge::data {

struct ImageOptions {
  int64_t height = 0, width = 0;  // output size; 0: keep the image's own size
  int channels = 3;               // 1 (gray, stb's luma conversion) or 3 (RGB)
  // Per-channel normalization of pixel / 255: (p / 255 - mean[c]) / std[c]. One value applies
  // to every channel; empty means mean 0, std 1 (pixels in [0, 1]).
  std::vector<float> mean, std;

  void Check() const;  // throws qforge::Error for bad sizes, channel counts or std <= 0
};

// The image files (.png .jpg .jpeg .bmp, any letter case) directly inside `dir` (not in
// subfolders), sorted by file name (byte order). Throws qforge::Error if `dir` is not a
// directory.
std::vector<std::string> ListImageFiles(const std::string& dir);

// Bilinear resize of an interleaved (HWC) float image, with half-pixel centers: output pixel
// (y, x) samples the input at ((y + 0.5) * in_h / out_h - 0.5, (x + 0.5) * in_w / out_w - 0.5),
// clamped to the image, as ONNX Resize (linear, half_pixel) and OpenCV INTER_LINEAR do (no
// antialiasing when shrinking). Returns out_h * out_w * channels values.
std::vector<float> ResizeBilinear(const float* src, int64_t in_h, int64_t in_w, int64_t channels,
                                  int64_t out_h, int64_t out_w);

// Loads one image as f32 [C, H, W]: decoded to `channels`, converted to p / 255, resized, then
// normalized. Throws qforge::Error naming the file when it cannot be read or decoded.
Tensor LoadImage(const std::string& path, const ImageOptions& options);

}  // namespace qforge::data
