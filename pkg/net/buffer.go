package net

// chunkSize is the size of an output chunk. Output is usually one small
// response or request that the kernel takes at once; the chunk goes back to
// the loop's free list as soon as it is sent, so idle connections hold no
// output memory (10,000 connections must fit in a few MiB).
const chunkSize = 16 << 10

// maxFreeChunks bounds the loop's free list: enough for a burst, not a cache
// of a 64 MiB response.
const maxFreeChunks = 64

// outBuffer is a connection's pending output: a queue of chunks, appended
// to and consumed from the front. A write never replaces what is pending
// (evio's loopWake did, evio#72); it goes after it.
type outBuffer struct {
	chunks [][]byte // chunks[head][off:] is the next byte to send
	head   int
	off    int
	n      int // pending bytes
}

// chunkPool is a loop's free list of output chunks.
type chunkPool struct{ free [][]byte }

func (p *chunkPool) get() []byte {
	if n := len(p.free); n > 0 {
		c := p.free[n-1]
		p.free[n-1] = nil
		p.free = p.free[:n-1]
		return c[:0]
	}
	return make([]byte, 0, chunkSize)
}

func (p *chunkPool) put(c []byte) {
	if cap(c) == chunkSize && len(p.free) < maxFreeChunks {
		p.free = append(p.free, c[:0])
	}
}

// Len is the number of pending bytes.
func (b *outBuffer) Len() int { return b.n }

// write appends a copy of data after whatever is pending.
func (b *outBuffer) write(pool *chunkPool, data []byte) {
	b.n += len(data)
	for len(data) > 0 {
		k := len(b.chunks)
		if k == b.head || len(b.chunks[k-1]) == cap(b.chunks[k-1]) {
			b.chunks = append(b.chunks, pool.get())
			k++
		}
		tail := b.chunks[k-1]
		m := copy(tail[len(tail):cap(tail)], data)
		b.chunks[k-1] = tail[:len(tail)+m]
		data = data[m:]
	}
}

// reset drops everything pending and returns the chunks to pool.
func (b *outBuffer) reset(pool *chunkPool) {
	for i := b.head; i < len(b.chunks); i++ {
		pool.put(b.chunks[i])
	}
	clear(b.chunks)
	b.chunks = b.chunks[:0]
	b.head, b.off, b.n = 0, 0, 0
}

// peek appends up to max pending slices, in order, to dst: the iovecs of
// the next write or writev.
func (b *outBuffer) peek(dst [][]byte, max int) [][]byte {
	for i := b.head; i < len(b.chunks) && len(dst) < max; i++ {
		c := b.chunks[i]
		if i == b.head {
			c = c[b.off:]
		}
		dst = append(dst, c)
	}
	return dst
}

// discard drops n sent bytes from the front and recycles emptied chunks.
func (b *outBuffer) discard(pool *chunkPool, n int) {
	b.n -= n
	for n > 0 {
		rest := len(b.chunks[b.head]) - b.off
		if n < rest {
			b.off += n
			return
		}
		n -= rest
		pool.put(b.chunks[b.head])
		b.chunks[b.head] = nil
		b.head++
		b.off = 0
	}
	if b.head == len(b.chunks) {
		b.chunks = b.chunks[:0]
		b.head = 0
	} else if b.head > 64 && b.head > len(b.chunks)/2 {
		// A long response drains from the front: compact now and then so
		// the slice does not grow without bound.
		m := copy(b.chunks, b.chunks[b.head:])
		clear(b.chunks[m:])
		b.chunks = b.chunks[:m]
		b.head = 0
	}
}
