// Appends records to one WAL file (format: wal_format.h).
//
// Ownership and threads: a WalWriter owns its file descriptor; it is not thread-safe (the Python
// Wal serialises appends and runs group commit on top). append() leaves data in the page cache;
// sync() makes everything appended so far durable (fdatasync). Nothing is acknowledged by this
// class: the caller acknowledges after sync() returns OK.
//
// Errors: every failure returns IOError naming the file, the offset and errno's text. After a
// failed write or sync the writer is poisoned: every later call returns the first error, because
// the file's tail is then unknown (a failed fsync may have dropped dirty pages). Reopening — which
// re-reads the file and truncates any torn tail — is the only way on.
//
// Failpoints: wal.write (error: ENOSPC), wal.mid_write (kill after writing half the record),
// wal.sync (error: EIO).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

struct iovec;

namespace vecstore {
namespace wal {

class WalWriter {
  public:
    // Creates `path` (which must not exist) with a file header for sequence number `seq`.
    static Result<std::unique_ptr<WalWriter>> create(const std::string& path, uint64_t seq);

    // Opens an existing file to append at `offset`, the end of its last whole record as found by
    // WalReader. Bytes past `offset` (a torn tail) are truncated and the truncation is synced.
    static Result<std::unique_ptr<WalWriter>> open_for_append(const std::string& path,
                                                               uint64_t offset);

    ~WalWriter();
    WalWriter(const WalWriter&) = delete;
    WalWriter& operator=(const WalWriter&) = delete;

    // Appends one record and returns the offset of its first fragment.
    Result<uint64_t> append(uint8_t record_type, uint8_t flags, uint64_t ts_begin, uint64_t ts_end,
                            const uint8_t* payload, size_t payload_bytes);

    // The same record, its payload given as parts in order (their concatenation): callers pass
    // large columns straight from their own buffers instead of assembling one copy.
    using Part = std::pair<const uint8_t*, size_t>;
    Result<uint64_t> append_parts(uint8_t record_type, uint8_t flags, uint64_t ts_begin,
                                  uint64_t ts_end, const std::vector<Part>& parts);

    // Makes every byte appended so far durable.
    Status sync();

    // Syncs and closes. Idempotent.
    Status close();

    uint64_t offset() const { return offset_; }
    const std::string& path() const { return path_; }

  private:
    WalWriter(std::string path, int fd, uint64_t offset);
    Status fail(Status s);
    Status write_all(const ::iovec* iov, int count, size_t total);

    std::string path_;
    int fd_ = -1;
    uint64_t offset_ = 0;
    Status poisoned_;
};

}  // namespace wal
}  // namespace vecstore
