// Image folders: stb_image decoding, bilinear resize, per-channel normalization (NCHW).
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_HDR
#define STBI_NO_LINEAR
#define STBI_FAILURE_USERMSG
#include "qforge/data/image_folder.h"

#include <stb/stb_image.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <memory>

namespace qforge::data {

namespace fs = std::filesystem;

void ImageOptions::Check() const {
  if (channels != 1 && channels != 3)
    throw Error("images: " + std::to_string(channels) + " channels (1 = gray or 3 = RGB)");
  if (height < 0 || width < 0 || height > 65536 || width > 65536)
    throw Error("images: bad size " + std::to_string(height) + "x" + std::to_string(width));
  for (const auto* v : {&mean, &std}) {
    if (!v->empty() && v->size() != 1 && v->size() != static_cast<size_t>(channels))
      throw Error("images: " + std::to_string(v->size()) + " " + (v == &mean ? "mean" : "std") +
                  " values for " + std::to_string(channels) + " channels (give 1 or " +
                  std::to_string(channels) + ")");
    for (float x : *v)
      if (!std::isfinite(x)) throw Error("images: mean/std values must be finite");
  }
  for (float s : std)
    if (!(s > 0)) throw Error("images: std values must be > 0");
}

std::vector<std::string> ListImageFiles(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error("'" + dir + "' is not a directory");
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (!entry.is_regular_file()) continue;
    std::string ext = entry.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp")
      files.push_back(entry.path().string());
  }
  if (ec) throw Error("cannot list '" + dir + "': " + ec.message());
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<float> ResizeBilinear(const float* src, int64_t in_h, int64_t in_w, int64_t channels,
                                  int64_t out_h, int64_t out_w) {
  std::vector<float> out(static_cast<size_t>(out_h * out_w * channels));
  // Source coordinate of output index i along an axis: two neighbours and the weight of the
  // second one.
  struct Tap {
    int64_t i0, i1;
    float f;
  };
  auto taps = [](int64_t in, int64_t n) {
    std::vector<Tap> t(static_cast<size_t>(n));
    const double scale = static_cast<double>(in) / static_cast<double>(n);
    for (int64_t i = 0; i < n; ++i) {
      const double s = std::clamp((i + 0.5) * scale - 0.5, 0.0, static_cast<double>(in - 1));
      const int64_t i0 = static_cast<int64_t>(s);
      t[i] = {i0, std::min(i0 + 1, in - 1), static_cast<float>(s - static_cast<double>(i0))};
    }
    return t;
  };
  const std::vector<Tap> ty = taps(in_h, out_h), tx = taps(in_w, out_w);
  for (int64_t y = 0; y < out_h; ++y) {
    const Tap a = ty[y];
    for (int64_t x = 0; x < out_w; ++x) {
      const Tap b = tx[x];
      for (int64_t c = 0; c < channels; ++c) {
        auto at = [&](int64_t yy, int64_t xx) { return src[(yy * in_w + xx) * channels + c]; };
        const float top = at(a.i0, b.i0) + b.f * (at(a.i0, b.i1) - at(a.i0, b.i0));
        const float bottom = at(a.i1, b.i0) + b.f * (at(a.i1, b.i1) - at(a.i1, b.i0));
        out[(y * out_w + x) * channels + c] = top + a.f * (bottom - top);
      }
    }
  }
  return out;
}

Tensor LoadImage(const std::string& path, const ImageOptions& o) {
  o.Check();
  int w = 0, h = 0, n = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(stbi_load(path.c_str(), &w, &h, &n, o.channels),
                                                   stbi_image_free);
  if (!pixels) {
    const char* why = stbi_failure_reason();
    throw Error("cannot decode image '" + path + "': " + (why ? why : "unknown error"));
  }
  const int64_t c = o.channels;
  std::vector<float> img(static_cast<size_t>(int64_t{w} * h * c));
  for (size_t i = 0; i < img.size(); ++i) img[i] = static_cast<float>(pixels.get()[i]) / 255.0f;
  const int64_t oh = o.height ? o.height : h, ow = o.width ? o.width : w;
  if (oh != h || ow != w) img = ResizeBilinear(img.data(), h, w, c, oh, ow);
  Tensor t(DType::kF32, {c, oh, ow});
  float* dst = t.data<float>();
  for (int64_t ch = 0; ch < c; ++ch) {
    const float mean = o.mean.empty() ? 0.0f : o.mean[o.mean.size() == 1 ? 0 : ch];
    const float sd = o.std.empty() ? 1.0f : o.std[o.std.size() == 1 ? 0 : ch];
    for (int64_t i = 0; i < oh * ow; ++i) dst[ch * oh * ow + i] = (img[i * c + ch] - mean) / sd;
  }
  return t;
}

}  // namespace qforge::data
