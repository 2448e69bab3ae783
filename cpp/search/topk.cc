#include "search/topk.h"

#include <algorithm>
#include <numeric>

namespace vecstore {
namespace search {

void TopK::sift_up(size_t i) {
    while (i > 0) {
        const size_t parent = (i - 1) / 2;
        if (!worse(keys_[i], ids_[i], keys_[parent], ids_[parent])) break;
        std::swap(keys_[i], keys_[parent]);
        std::swap(ids_[i], ids_[parent]);
        i = parent;
    }
}

void TopK::sift_down(size_t i) {
    const size_t n = keys_.size();
    for (;;) {
        size_t worst = i;
        const size_t l = 2 * i + 1, r = l + 1;
        if (l < n && worse(keys_[l], ids_[l], keys_[worst], ids_[worst])) worst = l;
        if (r < n && worse(keys_[r], ids_[r], keys_[worst], ids_[worst])) worst = r;
        if (worst == i) return;
        std::swap(keys_[i], keys_[worst]);
        std::swap(ids_[i], ids_[worst]);
        i = worst;
    }
}

void TopK::sorted(float* keys_out, int64_t* ids_out) const {
    std::vector<size_t> order(keys_.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        return worse(keys_[b], ids_[b], keys_[a], ids_[a]);
    });
    for (size_t i = 0; i < order.size(); ++i) {
        keys_out[i] = keys_[order[i]];
        ids_out[i] = ids_[order[i]];
    }
    for (size_t i = order.size(); i < k_; ++i) {
        keys_out[i] = std::numeric_limits<float>::infinity();
        ids_out[i] = -1;
    }
}

}  // namespace search
}  // namespace vecstore
