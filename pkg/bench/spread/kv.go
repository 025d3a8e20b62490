package spread

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/microctl/microctl/pkg/registry"
)

// KV is what the barrier and the result exchange need of Consul's KV store.
type KV interface {
	// Get reads key; ok is false when it does not exist.
	Get(ctx context.Context, key string) (v []byte, ok bool, err error)
	// Keys lists the keys under prefix.
	Keys(ctx context.Context, prefix string) ([]string, error)
	Put(ctx context.Context, key string, v []byte) error
	// Create writes key only if it does not exist yet (cas=0).
	Create(ctx context.Context, key string, v []byte) (bool, error)
	DeleteTree(ctx context.Context, prefix string) error
	// Watch is a blocking read of key past index, for at most wait.
	Watch(ctx context.Context, key string, index uint64, wait time.Duration) (v []byte, ok bool, next uint64, err error)
}

// ConsulKV is KV on microctl's Consul client.
type ConsulKV struct{ C *registry.Client }

func (k ConsulKV) Get(ctx context.Context, key string) ([]byte, bool, error) {
	e, err := k.C.KVGet(ctx, key)
	if err != nil || e == nil {
		return nil, false, err
	}
	return e.Value, true, nil
}

func (k ConsulKV) Keys(ctx context.Context, prefix string) ([]string, error) {
	return k.C.KVKeys(ctx, prefix)
}

func (k ConsulKV) Put(ctx context.Context, key string, v []byte) error {
	_, err := k.C.API.KV().Put(&api.KVPair{Key: key, Value: v}, (&api.WriteOptions{}).WithContext(ctx))
	if err != nil {
		return fmt.Errorf("write %s: %w", key, k.C.Err(err))
	}
	return nil
}

func (k ConsulKV) Create(ctx context.Context, key string, v []byte) (bool, error) {
	ok, _, err := k.C.API.KV().CAS(&api.KVPair{Key: key, Value: v}, (&api.WriteOptions{}).WithContext(ctx))
	if err != nil {
		return false, fmt.Errorf("create %s: %w", key, k.C.Err(err))
	}
	return ok, nil
}

func (k ConsulKV) DeleteTree(ctx context.Context, prefix string) error {
	_, err := k.C.API.KV().DeleteTree(prefix, (&api.WriteOptions{}).WithContext(ctx))
	if err != nil {
		return fmt.Errorf("delete %s: %w", prefix, k.C.Err(err))
	}
	return nil
}

func (k ConsulKV) Watch(ctx context.Context, key string, index uint64, wait time.Duration) ([]byte, bool, uint64, error) {
	e, next, err := k.C.KVWatch(ctx, key, index, wait)
	if err != nil || e == nil {
		return nil, false, next, err
	}
	return e.Value, true, next, nil
}
