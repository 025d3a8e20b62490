package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/consul/api"
)

// MaxTxnOps is Consul's limit on the operations of one transaction.
const MaxTxnOps = 64

// Txn collects KV operations that Consul applies atomically: all of them
// or none. Build it with the methods below, then Client.Commit it.
type Txn struct {
	ops api.TxnOps
}

func (t *Txn) add(op api.KVTxnOp) {
	t.ops = append(t.ops, &api.TxnOp{KV: &op})
}

// CheckSession fails the transaction unless key is held by session: the
// fence that stops a writer who lost its lock from writing anything.
func (t *Txn) CheckSession(key, session string) {
	t.add(api.KVTxnOp{Verb: api.KVCheckSession, Key: key, Session: session})
}

// CAS writes value if key's ModifyIndex is still index; index 0 means the
// key must not exist yet.
func (t *Txn) CAS(key string, value []byte, index uint64) {
	t.add(api.KVTxnOp{Verb: api.KVCAS, Key: key, Value: value, Index: index})
}

// DeleteCAS deletes key if its ModifyIndex is still index.
func (t *Txn) DeleteCAS(key string, index uint64) {
	t.add(api.KVTxnOp{Verb: api.KVDeleteCAS, Key: key, Index: index})
}

// CheckIndex fails the transaction unless key's ModifyIndex is index.
func (t *Txn) CheckIndex(key string, index uint64) {
	t.add(api.KVTxnOp{Verb: api.KVCheckIndex, Key: key, Index: index})
}

// CheckNotExists fails the transaction if key exists.
func (t *Txn) CheckNotExists(key string) {
	t.add(api.KVTxnOp{Verb: api.KVCheckNotExists, Key: key})
}

// Len is the number of operations so far.
func (t *Txn) Len() int { return len(t.ops) }

// Keys lists the keys the transaction touches, in order.
func (t *Txn) Keys() []string {
	out := make([]string, 0, len(t.ops))
	for _, op := range t.ops {
		out = append(out, op.KV.Key)
	}
	return out
}

// TxnFailure is one operation Consul named when it rolled a transaction back.
type TxnFailure struct {
	Key  string
	Verb string
	What string
}

// TxnConflictError means Consul rolled the transaction back because a check
// failed: a key changed since it was read, or the lock's session no longer
// holds the lock. Nothing was written.
type TxnConflictError struct {
	Failures []TxnFailure
}

func (e *TxnConflictError) Error() string {
	parts := make([]string, 0, len(e.Failures))
	for _, f := range e.Failures {
		parts = append(parts, fmt.Sprintf("%s %s: %s", f.Verb, f.Key, f.What))
	}
	return "transaction rolled back, nothing was written: " + strings.Join(parts, "; ")
}

// SessionLost reports whether the fence failed: the writer no longer held
// its lock when the transaction ran.
func (e *TxnConflictError) SessionLost() bool {
	for _, f := range e.Failures {
		if f.Verb == string(api.KVCheckSession) {
			return true
		}
	}
	return false
}

// Commit applies txn atomically. A rolled-back transaction is a
// *TxnConflictError; a refused permission is a *KVDeniedError naming the
// path; an empty transaction is a no-op.
func (c *Client) Commit(ctx context.Context, txn *Txn) error {
	if txn == nil || len(txn.ops) == 0 {
		return nil
	}
	if len(txn.ops) > MaxTxnOps {
		return fmt.Errorf("transaction of %d operations: Consul allows at most %d", len(txn.ops), MaxTxnOps)
	}
	ok, resp, _, err := c.API.Txn().Txn(txn.ops, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		// A token refused outright (unknown token) fails the whole request
		// rather than one operation; name the first key written.
		return fmt.Errorf("transaction: %w", c.kvErr(firstWrite(txn), "write", err))
	}
	if ok {
		return nil
	}
	conflict := &TxnConflictError{}
	var denied error
	for _, te := range resp.Errors {
		f := TxnFailure{What: te.What}
		if te.OpIndex >= 0 && te.OpIndex < len(txn.ops) && txn.ops[te.OpIndex].KV != nil {
			f.Key, f.Verb = txn.ops[te.OpIndex].KV.Key, string(txn.ops[te.OpIndex].KV.Verb)
		}
		if denied == nil && strings.Contains(te.What, "Permission denied") {
			pe := &PermissionError{Addr: c.Addr, Detail: te.What, Err: errors.New(te.What)}
			denied = deniedError(pe, f.Key, "write")
		}
		conflict.Failures = append(conflict.Failures, f)
	}
	if denied != nil {
		// A permission problem is what the user must fix; a stale index
		// reported beside it is noise.
		return fmt.Errorf("transaction: %w", denied)
	}
	return conflict
}

func firstWrite(txn *Txn) string {
	for _, op := range txn.ops {
		switch op.KV.Verb {
		case api.KVCheckSession, api.KVCheckIndex, api.KVCheckNotExists:
			continue
		}
		return op.KV.Key
	}
	return txn.ops[0].KV.Key
}
