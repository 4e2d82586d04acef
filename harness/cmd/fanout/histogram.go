//go:build linux

package main

import (
	"math/bits"
	"time"
)

// histogram counts latencies in buckets that are 1/32 of an octave wide (about 3% error) from
// a nanosecond to centuries, in a fixed array: recording one is a few instructions, which
// matters when millions of deliveries a second pass through one generator thread.
type histogram struct {
	counts [64 * subBuckets]uint64
	total  uint64
}

const (
	subBits    = 5
	subBuckets = 1 << subBits
)

func bucketOf(v uint64) int {
	if v < 2*subBuckets {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1
	return shift*subBuckets + int(v>>shift)
}

// upperBound is the largest value that falls in bucket i.
func upperBound(i int) uint64 {
	if i < 2*subBuckets {
		return uint64(i)
	}
	shift := i/subBuckets - 1
	mantissa := uint64(i - shift*subBuckets)
	return (mantissa+1)<<shift - 1
}

func (h *histogram) record(d time.Duration) {
	h.counts[bucketOf(uint64(max(d, 0)))]++
	h.total++
}

// quantile is the latency that a fraction q of deliveries did not exceed (rounded up to its
// bucket's upper bound, so never flattering).
func (h *histogram) quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(q*float64(h.total) + 0.999999)
	rank = min(max(rank, 1), h.total)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(upperBound(i))
		}
	}
	return 0
}
