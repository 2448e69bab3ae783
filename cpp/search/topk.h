// Bounded top-k selection over (key, id) pairs, where a smaller key is better.
//
// Callers map each metric to a key so that one structure serves all: key = distance for L2, HAMMING
// and JACCARD, key = -similarity for IP and COSINE. Ties are broken by the smaller id, so the kept set
// (the k lexicographically smallest (key, id) pairs) is unique: results do not depend on the order
// rows are scanned in, on blocking, or on the number of threads.
//
// Not thread-safe: one TopK per (query, thread). Storage is owned by the object.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace vecstore {
namespace search {

class TopK {
  public:
    explicit TopK(size_t k) : k_(k) {
        keys_.reserve(k);
        ids_.reserve(k);
    }

    size_t k() const { return k_; }
    size_t size() const { return keys_.size(); }

    // Keys >= threshold() can never enter (equal keys could only enter with a smaller id than the
    // current worst, which cannot happen while ids are pushed in increasing order).
    float threshold() const {
        return keys_.size() < k_ ? std::numeric_limits<float>::infinity() : keys_[0];
    }

    void push(float key, int64_t id) {
        if (keys_.size() < k_) {
            keys_.push_back(key);
            ids_.push_back(id);
            sift_up(keys_.size() - 1);
        } else if (k_ > 0 && worse(keys_[0], ids_[0], key, id)) {
            keys_[0] = key;
            ids_[0] = id;
            sift_down(0);
        }
    }

    void merge(const TopK& other) {
        for (size_t i = 0; i < other.keys_.size(); ++i) push(other.keys_[i], other.ids_[i]);
    }

    // Writes the kept pairs best first; slots past size() get id -1 and key +inf.
    void sorted(float* keys_out, int64_t* ids_out) const;

  private:
    // True if (ka, ia) is worse than (kb, ib): larger key, or equal key and larger id.
    static bool worse(float ka, int64_t ia, float kb, int64_t ib) {
        return ka > kb || (ka == kb && ia > ib);
    }
    void sift_up(size_t i);
    void sift_down(size_t i);

    size_t k_;
    std::vector<float> keys_;  // max-heap on (key, id): the worst kept pair at index 0
    std::vector<int64_t> ids_;
};

}  // namespace search
}  // namespace vecstore
