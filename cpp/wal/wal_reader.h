// Reads records from one WAL file held in memory (typically a read-only mmap of the file).
//
// The reader trusts nothing: every length is bounded by the block and the file, every fragment's
// checksum is verified, fragment sequences are checked, and the record header is validated. How it
// classifies damage (clean end, torn tail, corruption) is specified in wal_format.h.
//
// Ownership: the reader borrows `data` (the caller keeps it alive and unchanged). Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace vecstore {
namespace wal {

struct Record {
    uint64_t offset = 0;  // first fragment
    uint64_t end = 0;     // just past the last fragment
    uint8_t type = 0;
    uint8_t flags = 0;
    uint64_t ts_begin = 0;
    uint64_t ts_end = 0;
    std::string payload;
};

struct SkippedRange {
    uint64_t offset;
    uint64_t bytes;
    std::string reason;
};

enum class EndKind { kNotYet, kClean, kTornTail, kCorrupt };

class WalReader {
  public:
    // tail_file: this is the newest file of its channel (only there can a torn tail be legitimate).
    // skip_damage: report damaged ranges and resynchronise instead of stopping with Corruption.
    WalReader(const uint8_t* data, size_t size, std::string name, bool tail_file,
              bool skip_damage);

    // Validates the file header and returns its sequence number. Must be called first.
    Status read_header(uint64_t* seq);

    // Starts reading at `offset`, which must be a record position inside the file.
    Status seek(uint64_t offset);

    // Reads the next record. Returns false at the end; then end_kind() says why, and for
    // kCorrupt, error() holds the Corruption status naming the file and offset.
    bool next(Record* out);

    EndKind end_kind() const { return end_kind_; }
    const Status& error() const { return error_; }
    // Offset just past the last whole record read: where an appender must continue.
    uint64_t append_offset() const { return last_record_end_; }
    // Bytes of a torn tail (from the torn record's start to EOF); 0 otherwise.
    uint64_t dropped_bytes() const { return dropped_; }
    const std::vector<SkippedRange>& skipped() const { return skipped_; }

  private:
    bool all_zero(uint64_t from, uint64_t to) const;
    bool looks_torn(uint64_t offset, uint64_t frag_end) const;
    // Handles damage at `offset`: returns true to continue reading (skip mode), false to stop.
    bool damage(uint64_t offset, uint64_t frag_end, const std::string& reason);
    void finish_torn(uint64_t from);
    void finish_clean();

    const uint8_t* data_;
    size_t size_;
    std::string name_;
    bool tail_file_;
    bool skip_damage_;
    uint64_t pos_ = 0;
    uint64_t last_record_end_ = 0;
    bool in_record_ = false;
    bool resync_ = false;  // after a skip: drop continuation fragments of the broken record
    uint64_t record_start_ = 0;
    std::string buf_;
    EndKind end_kind_ = EndKind::kNotYet;
    Status error_;
    uint64_t dropped_ = 0;
    std::vector<SkippedRange> skipped_;
};

}  // namespace wal
}  // namespace vecstore
