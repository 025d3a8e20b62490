//go:build linux

package net

// defaultEngine on Linux is epoll.
const defaultEngine = EngineEpoll
