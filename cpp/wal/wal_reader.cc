#include "wal/wal_reader.h"

#include <algorithm>
#include <cstring>

#include "common/crc32c.h"
#include "wal/wal_format.h"

namespace vecstore {
namespace wal {

WalReader::WalReader(const uint8_t* data, size_t size, std::string name, bool tail_file,
                     bool skip_damage)
    : data_(data), size_(size), name_(std::move(name)), tail_file_(tail_file),
      skip_damage_(skip_damage) {}

Status WalReader::read_header(uint64_t* seq) {
    const std::string where = "WAL file " + name_;
    if (size_ < kFileHeaderSize) {
        if (tail_file_ && all_zero(0, size_)) {
            // A crash right after creating the file, before its header was durable.
            return Status::Corruption(where + " has no header (" + std::to_string(size_) +
                                      " bytes): an interrupted creation");
        }
        return Status::Corruption(where + " is " + std::to_string(size_) +
                                  " bytes, shorter than its 32-byte header");
    }
    if (std::memcmp(data_, kMagic, 8) != 0) {
        return Status::Corruption(where + " does not start with the WAL magic: not a WAL file");
    }
    if (crc32c::unmask(get_u32(data_ + 28)) != crc32c::value(data_, 28)) {
        return Status::Corruption(where + ": header checksum mismatch at offset 0");
    }
    const uint16_t major = get_u16(data_ + 8);
    if (major != kMajorVersion) {
        return Status::Corruption(where + " has format version " + std::to_string(major) +
                                  ".x; this vecstore reads version 1.x only");
    }
    *seq = get_u64(data_ + 16);
    pos_ = last_record_end_ = kFileHeaderSize;
    return Status::OK();
}

Status WalReader::seek(uint64_t offset) {
    if (offset < kFileHeaderSize || offset > size_) {
        return Status::InvalidArgument("position offset " + std::to_string(offset) +
                                       " is outside WAL file " + name_ + " (" +
                                       std::to_string(size_) + " bytes)");
    }
    pos_ = last_record_end_ = offset;
    in_record_ = resync_ = false;
    buf_.clear();
    return Status::OK();
}

bool WalReader::all_zero(uint64_t from, uint64_t to) const {
    to = std::min<uint64_t>(to, size_);
    for (uint64_t i = from; i < to; ++i) {
        if (data_[i] != 0) return false;
    }
    return true;
}

bool WalReader::looks_torn(uint64_t offset, uint64_t frag_end) const {
    if (!tail_file_) return false;
    frag_end = std::min<uint64_t>(frag_end, size_);
    // The file's trailing run of zero bytes starts at z; a crash hole starts on a sector boundary.
    uint64_t z = size_;
    while (z > offset && data_[z - 1] == 0) --z;
    const uint64_t hole = (z + kSectorSize - 1) / kSectorSize * kSectorSize;
    return hole > offset && hole < frag_end;
}

void WalReader::finish_torn(uint64_t from) {
    end_kind_ = EndKind::kTornTail;
    dropped_ = size_ > from ? size_ - from : 0;
    in_record_ = false;
    buf_.clear();
}

void WalReader::finish_clean() {
    end_kind_ = EndKind::kClean;
    in_record_ = false;
    buf_.clear();
}

bool WalReader::damage(uint64_t offset, uint64_t frag_end, const std::string& reason) {
    const uint64_t start = in_record_ ? record_start_ : offset;
    if (looks_torn(offset, frag_end)) {
        finish_torn(start);
        return false;
    }
    if (skip_damage_) {
        // Resume at the next block (fragments never cross one), or past the damaged record if the
        // reader already stands beyond that block.
        const uint64_t next_block = (offset / kBlockSize + 1) * kBlockSize;
        const uint64_t resume = std::max<uint64_t>(pos_, std::min<uint64_t>(next_block, size_));
        skipped_.push_back({start, resume - start, reason});
        pos_ = resume;
        in_record_ = false;
        resync_ = true;
        buf_.clear();
        return true;
    }
    end_kind_ = EndKind::kCorrupt;
    error_ = Status::Corruption("WAL file " + name_ + " is damaged at offset " +
                                std::to_string(offset) + ": " + reason +
                                " (open the WAL with on_damage='skip' to skip damaged records "
                                "and report them)");
    return false;
}

bool WalReader::next(Record* out) {
    if (end_kind_ != EndKind::kNotYet) return false;
    for (;;) {
        if (pos_ >= size_) {
            if (in_record_) {
                if (tail_file_) {
                    finish_torn(record_start_);
                    return false;
                }
                if (!damage(record_start_, size_, "the file ends inside a record")) return false;
                continue;
            }
            finish_clean();
            return false;
        }
        const uint64_t leftover = kBlockSize - pos_ % kBlockSize;
        if (leftover < kFragmentHeaderSize) {
            if (!all_zero(pos_, pos_ + leftover)) {
                if (!damage(pos_, pos_ + leftover, "non-zero bytes in a block trailer")) return false;
                continue;
            }
            pos_ += leftover;
            continue;
        }
        if (pos_ + kFragmentHeaderSize > size_) {
            if (!in_record_ && all_zero(pos_, size_)) {
                finish_clean();
            } else if (tail_file_) {
                finish_torn(in_record_ ? record_start_ : pos_);
            } else if (damage(pos_, size_, "the file ends inside a fragment header")) {
                continue;
            }
            return false;
        }
        const uint8_t* h = data_ + pos_;
        const uint32_t masked = get_u32(h);
        const uint16_t len = get_u16(h + 4);
        const uint8_t type = h[6];
        if (masked == 0 && len == 0 && type == kZero) {
            if (all_zero(pos_, size_)) {
                // Zero-filled space after the last write (preallocation or a crash hole).
                if (in_record_ && tail_file_) {
                    finish_torn(record_start_);
                } else if (in_record_) {
                    if (damage(record_start_, size_, "a record is cut off by zero bytes")) continue;
                } else {
                    finish_clean();
                }
                return false;
            }
            if (!damage(pos_, pos_ + leftover, "a zero fragment header followed by data")) return false;
            continue;
        }
        if (type < kFull || type > kLast) {
            if (!damage(pos_, pos_ + leftover, "unknown fragment type " + std::to_string(type))) {
                return false;
            }
            continue;
        }
        if (kFragmentHeaderSize + len > leftover) {
            if (!damage(pos_, pos_ + leftover, "fragment length " + std::to_string(len) +
                                                   " runs past its block")) {
                return false;
            }
            continue;
        }
        const uint64_t frag_end = pos_ + kFragmentHeaderSize + len;
        if (frag_end > size_) {
            if (tail_file_) {
                finish_torn(in_record_ ? record_start_ : pos_);
                return false;
            }
            if (!damage(pos_, size_, "the file ends inside a fragment")) return false;
            continue;
        }
        uint32_t crc = crc32c::value(&type, 1);
        crc = crc32c::extend(crc, h + kFragmentHeaderSize, len);
        if (crc32c::unmask(masked) != crc) {
            if (!damage(pos_, frag_end, "fragment checksum mismatch")) return false;
            continue;
        }
        if (resync_) {
            // After a skip, continuation fragments belong to the record that was skipped.
            if (type == kMiddle || type == kLast) {
                skipped_.back().bytes += frag_end - pos_;
                pos_ = frag_end;
                continue;
            }
            resync_ = false;
        }
        if ((type == kFull || type == kFirst) && in_record_) {
            if (!damage(pos_, frag_end, "a record starting at offset " +
                                            std::to_string(record_start_) + " is unfinished")) {
                return false;
            }
            continue;
        }
        if ((type == kMiddle || type == kLast) && !in_record_) {
            if (!damage(pos_, frag_end, "a continuation fragment without a first fragment")) {
                return false;
            }
            continue;
        }
        if (type == kFull || type == kFirst) {
            in_record_ = true;
            record_start_ = pos_;
            buf_.clear();
        }
        buf_.append(reinterpret_cast<const char*>(h + kFragmentHeaderSize), len);
        pos_ = frag_end;
        if (type == kFirst || type == kMiddle) continue;

        // A whole record: validate its header.
        const auto* r = reinterpret_cast<const uint8_t*>(buf_.data());
        std::string bad;
        if (buf_.size() < kRecordHeaderSize) {
            bad = "record shorter than its 24-byte header";
        } else if (get_u32(r + 4) != buf_.size() - kRecordHeaderSize) {
            bad = "record payload length does not match its fragments";
        } else if (r[0] == 0 || (r[1] & ~kKnownFlags) != 0 || get_u16(r + 2) != 0) {
            bad = "malformed record header";
        }
        if (!bad.empty()) {
            if (!damage(record_start_, frag_end, bad)) return false;
            continue;
        }
        out->offset = record_start_;
        out->end = frag_end;
        out->type = r[0];
        out->flags = r[1];
        out->ts_begin = get_u64(r + 8);
        out->ts_end = get_u64(r + 16);
        out->payload.assign(buf_, kRecordHeaderSize, std::string::npos);
        in_record_ = false;
        last_record_end_ = frag_end;
        return true;
    }
}

}  // namespace wal
}  // namespace vecstore
