// qforge's native model file (.qf): a small checked header around the serialized graph.
//
// Layout (all integers little-endian), docs/quantization.md:
//   offset  size  field
//        0     8  magic  "\x89QFORGE\n"  (a high byte and a newline catch text-mode mangling)
//        8     4  format version (kQfVersion)
//       12     4  flags (0; readers reject unknown bits)
//       16     8  payload size in bytes
//       24     4  CRC-32 (IEEE 802.3, as zlib's crc32) of the payload
//       28     4  reserved (0)
//       32     …  payload: the graph as an ONNX ModelProto (onnx_io::SaveModelToBytes), with
//                 qforge's integer ops in the "qforge" / "com.microsoft" domains
// A quantized graph keeps int8 weights as int8 (raw_data, one byte each), so a .qf of an int8
// model is about a quarter of the fp32 model. Reading checks the magic, version, flags, size
// and checksum before parsing and never runs ONNX shape inference, so the loaded graph is the
// saved one (ir::ToText identical).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "qforge/ir/graph.h"

namespace qforge::onnx_io {

inline constexpr char kQfMagic[8] = {'\x89', 'Q', 'F', 'O', 'R', 'G', 'E', '\n'};
inline constexpr uint32_t kQfVersion = 1;
inline constexpr size_t kQfHeaderBytes = 32;

// CRC-32 (reflected polynomial 0xEDB88320, init and final XOR 0xFFFFFFFF).
uint32_t Crc32(std::string_view bytes);

// The complete file contents for `graph`.
std::string SaveQfToBytes(const ir::Graph& graph);
// Parses file contents. Throws Error naming `what` for a short, foreign, newer, truncated or
// corrupt file (each with its own message).
ir::Graph LoadQfFromBytes(std::string_view bytes, const std::string& what = "<memory>");

// Writes atomically (data::WriteFileAtomic): readers never see a partial file.
void SaveQf(const ir::Graph& graph, const std::string& path);
ir::Graph LoadQf(const std::string& path);

// True when the file starts with the .qf magic (false for unreadable or short files).
bool IsQfFile(const std::string& path);

}  // namespace qforge::onnx_io
