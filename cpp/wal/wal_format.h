// The vecstore write-ahead-log file format, version 1.0. (Also in docs/formats.md.)
//
// A WAL channel is a directory of files named <seq>.log (seq: 20 decimal digits, increasing). A file
// is a 32-byte file header followed by record fragments, laid out in 32 KiB blocks counted from
// offset 0 (the header takes the start of block 0). All integers are little-endian.
//
// File header (32 bytes)
//   +0   8  magic "VSWAL\0\r\n"
//   +8   2  major version = 1      (a reader refuses other majors)
//   +10  2  minor version = 0      (readers accept any minor of their major: minors only add)
//   +12  4  reserved, zero
//   +16  8  file sequence number (= the <seq> of the file name)
//   +24  4  reserved, zero
//   +28  4  masked CRC32C of bytes [0, 28)
//
// Fragment (never crosses a block boundary)
//   +0   4  masked CRC32C of the type byte followed by the fragment payload
//   +4   2  payload length in bytes (<= 32768 - 7)
//   +6   1  type: 1 FULL, 2 FIRST, 3 MIDDLE, 4 LAST
//   +7   n  payload
// Invariant: a block never ends with fewer than 7 unused bytes holding a fragment; when fewer than
// 7 bytes remain they are zero (a trailer) and the next fragment starts at the next block.
//
// Record (the concatenated payloads of FULL, or of FIRST MIDDLE* LAST)
//   +0   1  record type: 1 insert, 2 delete, 3 ddl, 4 time tick (others reserved)
//   +1   1  flags: bit 0 = payload is zstd-compressed; other bits zero
//   +2   2  reserved, zero
//   +4   4  payload length in bytes
//   +8   8  first timestamp of the records the payload carries
//   +16  8  last timestamp
//   +24  n  payload (an Arrow IPC stream for inserts and deletes)
// A record's position is (file sequence number, offset of its first fragment).
//
// Masked CRC (LevelDB's scheme): mask(c) = ((c >> 15) | (c << 17)) + 0xa282ead8.
//
// Damage and torn tails. Writes are appended in order and acknowledged only after fsync (sync
// policy "always"), so a crash can damage only the unacknowledged end of the newest file, and a
// crash leaves either a short file or zero-filled sectors (file systems expose unwritten extents as
// zeros, never as old or random data). The reader therefore reports:
//   clean end   EOF on a record boundary, or only zero bytes from a record boundary to EOF;
//   torn tail   (newest file only) a damaged record that runs past EOF, or whose damaged fragment
//               is followed by zeros from a 512-byte-aligned offset inside it through EOF; the
//               bytes from the record's start to EOF are reported as dropped and the writer
//               truncates them before appending;
//   corruption  anything else (a bad checksum, length or type with data after it, any damage in an
//               older file), with the file offset. In the opt-in skip mode the reader reports the
//               damaged range, resynchronises at the next block and goes on.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vecstore {
namespace wal {

constexpr size_t kBlockSize = 32768;
constexpr size_t kFileHeaderSize = 32;
constexpr size_t kFragmentHeaderSize = 7;
constexpr size_t kRecordHeaderSize = 24;
constexpr size_t kSectorSize = 512;  // granularity of the zero-filled holes a crash can leave
constexpr uint16_t kMajorVersion = 1;
constexpr uint16_t kMinorVersion = 0;
constexpr char kMagic[8] = {'V', 'S', 'W', 'A', 'L', '\0', '\r', '\n'};

enum FragmentType : uint8_t { kZero = 0, kFull = 1, kFirst = 2, kMiddle = 3, kLast = 4 };

enum RecordType : uint8_t { kInsert = 1, kDelete = 2, kDdl = 3, kTimeTick = 4 };

constexpr uint8_t kFlagZstd = 1;
constexpr uint8_t kKnownFlags = kFlagZstd;

// Largest payload a record may carry (the length field is 32 bits; keep well inside).
constexpr uint64_t kMaxPayloadBytes = (1ull << 31);

inline void put_u16(uint8_t* p, uint16_t v) {
    p[0] = static_cast<uint8_t>(v);
    p[1] = static_cast<uint8_t>(v >> 8);
}
inline void put_u32(uint8_t* p, uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline void put_u64(uint8_t* p, uint64_t v) {
    for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline uint16_t get_u16(const uint8_t* p) {
    return static_cast<uint16_t>(p[0] | (static_cast<uint16_t>(p[1]) << 8));
}
inline uint32_t get_u32(const uint8_t* p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}
inline uint64_t get_u64(const uint8_t* p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

}  // namespace wal
}  // namespace vecstore
