//go:build !linux

package net

import (
	"errors"
)

// defaultEngine elsewhere is the portable engine on Go's net package.
const defaultEngine = EngineGo

func newEpollEngine(Handler, Options) (engine, error) {
	return nil, errors.New("net: the epoll engine needs Linux; use the default engine")
}
