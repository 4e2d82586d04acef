//go:build linux

package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The generator's fast paths are only worth their speed if they read what was written.
func TestMessageFieldsRoundTrip(t *testing.T) {
	g := &generator{w: workload{size: 32}}
	for _, c := range []struct {
		sender    int
		seq       uint32
		scheduled time.Duration
	}{{0, 0, 0}, {3, 0xdeadbeef, 0x0123456789abcdef}, {0xfe, 0xffffffff, 1}} {
		line := g.message(c.sender, c.seq, c.scheduled)
		require.Len(t, line, 32)
		require.Equal(t, "\r\n", string(line[30:]))
		require.Equal(t, uint64(c.seq), parseHex8(line[2:10]))
		require.Equal(t, uint64(c.scheduled), parseHex8(line[10:18])<<32|parseHex8(line[18:26]))
		require.Equal(t, c.sender, int(hexValue[line[0]])<<4|int(hexValue[line[1]]))
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {0.999, 999 * time.Microsecond}} {
		got := h.quantile(c.q)
		require.GreaterOrEqual(t, got, c.want, "q=%v", c.q)
		require.LessOrEqual(t, float64(got), float64(c.want)*1.04, "q=%v", c.q)
	}
}
