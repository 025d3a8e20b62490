//go:build linux

package net

import "os"

func osErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return os.NewSyscallError(op, err)
}
