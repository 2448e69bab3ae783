#include "wal/wal_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "common/crc32c.h"
#include "common/failpoint.h"
#include "common/macros.h"
#include "wal/wal_format.h"

namespace vecstore {
namespace wal {
namespace {

const uint8_t kZeros[kFragmentHeaderSize] = {};

Status io_error(const std::string& what, const std::string& path, uint64_t offset, int err) {
    return Status::IOError(what + " " + path + " at offset " + std::to_string(offset) + ": " +
                           std::strerror(err));
}

int sync_fd(int fd) {
#if defined(__APPLE__)
    // fsync on macOS does not flush the drive's cache; F_FULLFSYNC does.
    if (fcntl(fd, F_FULLFSYNC) == 0) return 0;
    return fsync(fd);
#else
    return fdatasync(fd);
#endif
}

Status sync_parent_dir(const std::string& path) {
    const size_t slash = path.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_CLOEXEC);
    if (dfd < 0) return io_error("cannot open directory of", path, 0, errno);
    const int rc = fsync(dfd);
    const int err = errno;
    ::close(dfd);
    if (rc != 0) return io_error("cannot fsync directory of", path, 0, err);
    return Status::OK();
}

}  // namespace

WalWriter::WalWriter(std::string path, int fd, uint64_t offset)
    : path_(std::move(path)), fd_(fd), offset_(offset) {}

WalWriter::~WalWriter() {
    if (fd_ >= 0) ::close(fd_);  // no sync: an unclosed writer's tail was never acknowledged
}

Result<std::unique_ptr<WalWriter>> WalWriter::create(const std::string& path, uint64_t seq) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return io_error("cannot create WAL file", path, 0, errno);
    std::unique_ptr<WalWriter> w(new WalWriter(path, fd, 0));
    uint8_t header[kFileHeaderSize] = {};
    std::memcpy(header, kMagic, 8);
    put_u16(header + 8, kMajorVersion);
    put_u16(header + 10, kMinorVersion);
    put_u64(header + 16, seq);
    put_u32(header + 28, crc32c::mask(crc32c::value(header, 28)));
    const iovec iov{header, kFileHeaderSize};
    VS_RETURN_IF_ERROR(w->write_all(&iov, 1, kFileHeaderSize));
    w->offset_ = kFileHeaderSize;
    VS_RETURN_IF_ERROR(w->sync());
    // The file's directory entry must be durable too, or a crash could lose the whole file.
    VS_RETURN_IF_ERROR(sync_parent_dir(path));
    return w;
}

Result<std::unique_ptr<WalWriter>> WalWriter::open_for_append(const std::string& path,
                                                              uint64_t offset) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return io_error("cannot open WAL file", path, 0, errno);
    std::unique_ptr<WalWriter> w(new WalWriter(path, fd, offset));
    struct stat st;
    if (fstat(fd, &st) != 0) return io_error("cannot stat WAL file", path, 0, errno);
    const auto size = static_cast<uint64_t>(st.st_size);
    if (offset < kFileHeaderSize || offset > size) {
        return Status::InvalidArgument("append offset " + std::to_string(offset) +
                                       " is outside WAL file " + path + " of " +
                                       std::to_string(size) + " bytes");
    }
    if (size > offset) {
        // Invariant: new records never follow a torn tail, or a reader would stop before them.
        if (ftruncate(fd, static_cast<off_t>(offset)) != 0) {
            return io_error("cannot truncate torn tail of", path, offset, errno);
        }
        VS_RETURN_IF_ERROR(w->sync());
    }
    if (lseek(fd, static_cast<off_t>(offset), SEEK_SET) < 0) {
        return io_error("cannot seek in", path, offset, errno);
    }
    return w;
}

Status WalWriter::fail(Status s) {
    if (poisoned_.ok()) poisoned_ = s;
    return poisoned_;
}

Status WalWriter::write_all(const iovec* iov_in, int count, size_t total) {
    std::vector<iovec> iov(iov_in, iov_in + count);
    size_t done = 0, first = 0;
    while (done < total) {
        const int n = static_cast<int>(std::min<size_t>(iov.size() - first, IOV_MAX));
        const ssize_t w = ::writev(fd_, iov.data() + first, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return fail(io_error("cannot write WAL file", path_, offset_ + done, errno));
        }
        done += static_cast<size_t>(w);
        // Advance past what was written (a short write may stop inside an iovec).
        size_t left = static_cast<size_t>(w);
        while (first < iov.size() && left >= iov[first].iov_len) {
            left -= iov[first].iov_len;
            ++first;
        }
        if (left > 0) {
            iov[first].iov_base = static_cast<uint8_t*>(iov[first].iov_base) + left;
            iov[first].iov_len -= left;
        }
    }
    return Status::OK();
}

Result<uint64_t> WalWriter::append(uint8_t record_type, uint8_t flags, uint64_t ts_begin,
                                   uint64_t ts_end, const uint8_t* payload, size_t payload_bytes) {
    return append_parts(record_type, flags, ts_begin, ts_end, {Part{payload, payload_bytes}});
}

Result<uint64_t> WalWriter::append_parts(uint8_t record_type, uint8_t flags, uint64_t ts_begin,
                                         uint64_t ts_end, const std::vector<Part>& parts) {
    if (!poisoned_.ok()) return poisoned_;
    if (fd_ < 0) return Status::InvalidArgument("WAL file " + path_ + " is closed");
    size_t payload_bytes = 0;
    for (const Part& p : parts) payload_bytes += p.second;
    if (payload_bytes > kMaxPayloadBytes) {
        return Status::InvalidArgument("WAL record payload of " + std::to_string(payload_bytes) +
                                       " bytes exceeds the 2 GiB limit; split the batch");
    }
    if (failpoint::hit("wal.write") == failpoint::Action::kError) {
        return fail(io_error("cannot write WAL file", path_, offset_, ENOSPC));
    }
    uint8_t rec[kRecordHeaderSize] = {};
    rec[0] = record_type;
    rec[1] = flags;
    put_u32(rec + 4, static_cast<uint32_t>(payload_bytes));
    put_u64(rec + 8, ts_begin);
    put_u64(rec + 16, ts_end);

    // The record's logical bytes are rec[] followed by the parts; fragments slice that sequence.
    // Fragments are cut in order, so the part holding a slice's start only moves forward.
    const size_t total = kRecordHeaderSize + payload_bytes;
    size_t part = 0, part_start = 0;  // parts[part] holds payload bytes [part_start, ...)
    auto slice = [&](size_t from, size_t len, std::vector<iovec>* iov, uint32_t* crc) {
        if (from < kRecordHeaderSize && len > 0) {
            const size_t n = std::min(len, kRecordHeaderSize - from);
            iov->push_back({rec + from, n});
            *crc = crc32c::extend(*crc, rec + from, n);
            from += n;
            len -= n;
        }
        size_t at = from - kRecordHeaderSize;  // payload offset
        while (len > 0) {
            while (at >= part_start + parts[part].second) part_start += parts[part++].second;
            const size_t n = std::min(len, part_start + parts[part].second - at);
            const uint8_t* p = parts[part].first + (at - part_start);
            iov->push_back({const_cast<uint8_t*>(p), n});
            *crc = crc32c::extend(*crc, p, n);
            at += n;
            len -= n;
        }
    };

    const size_t max_fragments = total / (kBlockSize - kFragmentHeaderSize) + 2;
    std::vector<std::array<uint8_t, kFragmentHeaderSize>> headers(max_fragments);
    std::vector<iovec> iov;
    iov.reserve(3 * max_fragments + 2 * parts.size() + 1);
    uint64_t pos = offset_;
    uint64_t start = 0;
    size_t consumed = 0, bytes = 0, h = 0;
    bool first = true;
    for (;;) {
        size_t leftover = kBlockSize - pos % kBlockSize;
        if (leftover < kFragmentHeaderSize) {
            iov.push_back({const_cast<uint8_t*>(kZeros), leftover});  // block trailer
            pos += leftover;
            bytes += leftover;
            leftover = kBlockSize;
        }
        if (first) start = pos;
        const size_t frag = std::min(leftover - kFragmentHeaderSize, total - consumed);
        const bool last = consumed + frag == total;
        const uint8_t type = first && last ? kFull : first ? kFirst : last ? kLast : kMiddle;
        uint8_t* hdr = headers[h++].data();
        iov.push_back({hdr, kFragmentHeaderSize});
        uint32_t crc = crc32c::value(&type, 1);
        slice(consumed, frag, &iov, &crc);
        put_u32(hdr, crc32c::mask(crc));
        put_u16(hdr + 4, static_cast<uint16_t>(frag));
        hdr[6] = type;
        pos += kFragmentHeaderSize + frag;
        bytes += kFragmentHeaderSize + frag;
        consumed += frag;
        first = false;
        if (last) break;
    }
    if (failpoint::any_configured()) {
        // Two writes, so that a kill at wal.mid_write leaves a real torn record on disk.
        size_t half_iov = iov.size() / 2, half_bytes = 0;
        for (size_t i = 0; i < half_iov; ++i) half_bytes += iov[i].iov_len;
        VS_RETURN_IF_ERROR(write_all(iov.data(), static_cast<int>(half_iov), half_bytes));
        failpoint::hit("wal.mid_write");
        VS_RETURN_IF_ERROR(write_all(iov.data() + half_iov, static_cast<int>(iov.size() - half_iov),
                                     bytes - half_bytes));
    } else {
        VS_RETURN_IF_ERROR(write_all(iov.data(), static_cast<int>(iov.size()), bytes));
    }
    offset_ = pos;
    return start;
}

Status WalWriter::sync() {
    if (!poisoned_.ok()) return poisoned_;
    if (fd_ < 0) return Status::InvalidArgument("WAL file " + path_ + " is closed");
    if (failpoint::hit("wal.sync") == failpoint::Action::kError) {
        return fail(io_error("cannot fsync WAL file", path_, offset_, EIO));
    }
    if (sync_fd(fd_) != 0) return fail(io_error("cannot fsync WAL file", path_, offset_, errno));
    return Status::OK();
}

Status WalWriter::close() {
    if (fd_ < 0) return Status::OK();
    Status s = poisoned_.ok() ? sync() : poisoned_;
    ::close(fd_);
    fd_ = -1;
    return s;
}

}  // namespace wal
}  // namespace vecstore
