// The native .qf model file: header (magic, version, size, CRC-32) + ONNX ModelProto payload.
#include "qforge/onnx/qf_file.h"

#include <array>
#include <fstream>
#include <sstream>

#include "qforge/data/atomic_file.h"
#include "qforge/onnx/onnx.h"

namespace qforge::onnx_io {

namespace {

void Put(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
uint64_t Get(std::string_view in, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t{static_cast<uint8_t>(in[at + i])} << (8 * i);
  return v;
}

}  // namespace

uint32_t Crc32(std::string_view bytes) {
  static const std::array<uint32_t, 256> kTable = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xFFFFFFFFu;
  for (char b : bytes) c = kTable[(c ^ static_cast<uint8_t>(b)) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

std::string SaveQfToBytes(const ir::Graph& graph) {
  const std::string payload = SaveModelToBytes(graph);
  std::string out(kQfMagic, sizeof(kQfMagic));
  Put(out, kQfVersion, 4);
  Put(out, 0, 4);
  Put(out, payload.size(), 8);
  Put(out, Crc32(payload), 4);
  Put(out, 0, 4);
  out += payload;
  return out;
}

ir::Graph LoadQfFromBytes(std::string_view bytes, const std::string& what) {
  if (bytes.size() < sizeof(kQfMagic) ||
      bytes.substr(0, sizeof(kQfMagic)) != std::string_view(kQfMagic, sizeof(kQfMagic)))
    throw Error(what + ": not a qforge .qf model file (bad magic)");
  if (bytes.size() < kQfHeaderBytes)
    throw Error(what + ": truncated .qf file (" + std::to_string(bytes.size()) +
                " bytes, the header alone is " + std::to_string(kQfHeaderBytes) + ")");
  const uint64_t version = Get(bytes, 8, 4), flags = Get(bytes, 12, 4);
  const uint64_t size = Get(bytes, 16, 8), crc = Get(bytes, 24, 4);
  if (version != kQfVersion)
    throw Error(what + ": .qf format version " + std::to_string(version) +
                " is not supported (this qforge reads version " + std::to_string(kQfVersion) + ")");
  if (flags != 0 || Get(bytes, 28, 4) != 0)
    throw Error(what + ": .qf header has unknown flags (corrupt or newer file)");
  const uint64_t have = bytes.size() - kQfHeaderBytes;
  if (have < size)
    throw Error(what + ": truncated .qf file (payload " + std::to_string(have) + " of " +
                std::to_string(size) + " bytes)");
  if (have > size)
    throw Error(what + ": .qf file has " + std::to_string(have - size) +
                " unexpected bytes after the payload");
  const std::string_view payload = bytes.substr(kQfHeaderBytes);
  if (Crc32(payload) != crc) throw Error(what + ": corrupt .qf file (checksum mismatch)");
  LoadOptions options;
  options.infer_shapes = false;  // the saved graph, exactly
  return LoadModelFromBytes(payload, "", options, what);
}

void SaveQf(const ir::Graph& graph, const std::string& path) {
  data::WriteFileAtomic(path, SaveQfToBytes(graph));
}

ir::Graph LoadQf(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open file");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error(path + ": read error");
  return LoadQfFromBytes(ss.str(), path);
}

bool IsQfFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char head[sizeof(kQfMagic)] = {};
  if (!in.read(head, sizeof(head))) return false;
  return std::string_view(head, sizeof(head)) == std::string_view(kQfMagic, sizeof(kQfMagic));
}

}  // namespace qforge::onnx_io
