package net

import (
	"bytes"
	"testing"
)

func TestOutBuffer(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 3*chunkSize/16+5) // spans 4 chunks
	tests := []struct {
		name   string
		writes [][]byte
		sends  []int // bytes the "kernel" takes per write call
	}{
		{"empty", nil, nil},
		{"one small, all sent", [][]byte{[]byte("hello")}, []int{5}},
		{"small writes coalesce", [][]byte{[]byte("a"), []byte("bc"), []byte("def")}, []int{6}},
		{"partial sends", [][]byte{[]byte("hello, world")}, []int{1, 4, 7}},
		{"big write over chunks", [][]byte{big}, []int{chunkSize + 3, 10, len(big) - chunkSize - 13}},
		{"append while pending", [][]byte{big, []byte("tail")}, []int{100, len(big) - 100 + 4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var pool chunkPool
			var b outBuffer
			var want []byte
			for _, w := range tc.writes {
				b.write(&pool, w)
				want = append(want, w...)
			}
			if b.Len() != len(want) {
				t.Fatalf("Len = %d, want %d", b.Len(), len(want))
			}
			var got []byte
			for _, n := range tc.sends {
				var flat []byte
				for _, s := range b.peek(nil, 1<<20) {
					flat = append(flat, s...)
				}
				got = append(got, flat[:n]...)
				b.discard(&pool, n)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("sent %d bytes differing from the %d written", len(got), len(want))
			}
			if b.Len() != 0 || len(b.chunks) != 0 {
				t.Fatalf("after sending everything: Len %d, %d chunks", b.Len(), len(b.chunks))
			}
		})
	}
}

func TestOutBufferPeekLimit(t *testing.T) {
	var pool chunkPool
	var b outBuffer
	b.write(&pool, make([]byte, 5*chunkSize))
	if got := len(b.peek(nil, 3)); got != 3 {
		t.Fatalf("peek(3) gave %d slices", got)
	}
}
