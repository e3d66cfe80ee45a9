// Reference N-d Conv / ConvTranspose (see conv_ref.h): plain loops over named indices.
#include "kernels/ref/conv_ref.h"

#include <vector>

namespace qforge::kernels::ref {

namespace {

int64_t Product(const std::vector<int64_t>& v) {
  int64_t p = 1;
  for (int64_t d : v) p *= d;
  return p;
}

// Converts a flat index into per-dimension coordinates of `sizes` (row-major).
void Unflatten(int64_t flat, const std::vector<int64_t>& sizes, std::vector<int64_t>& coord) {
  for (size_t d = sizes.size(); d-- > 0;) {
    coord[d] = flat % sizes[d];
    flat /= sizes[d];
  }
}

}  // namespace

void Conv(const ConvGeometry& g, const float* x, const float* w, const float* bias, float* y) {
  const size_t rank = g.kernel.size();
  const int64_t in_per_group = g.in_channels / g.group;
  const int64_t out_per_group = g.out_channels / g.group;
  const int64_t in_plane = Product(g.in_size);
  const int64_t out_plane = Product(g.out_size);
  const int64_t taps = Product(g.kernel);
  std::vector<int64_t> out_pos(rank), tap(rank);

  for (int64_t n = 0; n < g.batch; ++n) {
    for (int64_t oc = 0; oc < g.out_channels; ++oc) {
      const int64_t group = oc / out_per_group;
      for (int64_t o = 0; o < out_plane; ++o) {
        Unflatten(o, g.out_size, out_pos);
        double sum = bias != nullptr ? bias[oc] : 0.0;
        for (int64_t ic = 0; ic < in_per_group; ++ic) {
          const int64_t channel = group * in_per_group + ic;
          const float* x_plane = x + (n * g.in_channels + channel) * in_plane;
          const float* w_taps = w + (oc * in_per_group + ic) * taps;
          for (int64_t t = 0; t < taps; ++t) {
            Unflatten(t, g.kernel, tap);
            int64_t in_index = 0;
            bool inside = true;
            for (size_t d = 0; d < rank; ++d) {
              const int64_t i =
                  out_pos[d] * g.strides[d] - g.pads_begin[d] + tap[d] * g.dilations[d];
              if (i < 0 || i >= g.in_size[d]) inside = false;
              in_index = in_index * g.in_size[d] + i;
            }
            if (inside) sum += static_cast<double>(x_plane[in_index]) * w_taps[t];
          }
        }
        y[(n * g.out_channels + oc) * out_plane + o] = static_cast<float>(sum);
      }
    }
  }
}

void ConvTranspose(const ConvGeometry& g, const float* x, const float* w, const float* bias,
                   float* y) {
  const size_t rank = g.kernel.size();
  const int64_t in_per_group = g.in_channels / g.group;
  const int64_t out_per_group = g.out_channels / g.group;
  const int64_t in_plane = Product(g.in_size);
  const int64_t out_plane = Product(g.out_size);
  const int64_t taps = Product(g.kernel);
  std::vector<double> acc(out_plane);
  std::vector<int64_t> in_pos(rank), tap(rank);

  for (int64_t n = 0; n < g.batch; ++n) {
    for (int64_t oc = 0; oc < g.out_channels; ++oc) {
      const int64_t group = oc / out_per_group;
      const int64_t oc_in_group = oc % out_per_group;
      for (double& a : acc) a = bias != nullptr ? bias[oc] : 0.0;
      for (int64_t ic = 0; ic < in_per_group; ++ic) {
        const int64_t channel = group * in_per_group + ic;
        const float* x_plane = x + (n * g.in_channels + channel) * in_plane;
        const float* w_taps = w + (channel * out_per_group + oc_in_group) * taps;
        for (int64_t i = 0; i < in_plane; ++i) {
          Unflatten(i, g.in_size, in_pos);
          for (int64_t t = 0; t < taps; ++t) {
            Unflatten(t, g.kernel, tap);
            int64_t out_index = 0;
            bool inside = true;
            for (size_t d = 0; d < rank; ++d) {
              const int64_t o =
                  in_pos[d] * g.strides[d] - g.pads_begin[d] + tap[d] * g.dilations[d];
              if (o < 0 || o >= g.out_size[d]) inside = false;
              out_index = out_index * g.out_size[d] + o;
            }
            if (inside) acc[out_index] += static_cast<double>(x_plane[i]) * w_taps[t];
          }
        }
      }
      float* y_plane = y + (n * g.out_channels + oc) * out_plane;
      for (int64_t o = 0; o < out_plane; ++o) y_plane[o] = static_cast<float>(acc[o]);
    }
  }
}

}  // namespace qforge::kernels::ref
