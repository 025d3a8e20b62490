package registry

import (
	"context"
	"fmt"

	"github.com/hashicorp/consul/api"
)

// KVKeyListing lists the keys under prefix without their values, and says
// whether Consul left some out because the token may not read them: a
// caller that concludes "this key is missing" from a listing must know
// that the listing was complete.
func (c *Client) KVKeyListing(ctx context.Context, prefix string) ([]string, bool, error) {
	keys, meta, err := c.API.KV().Keys(prefix, "", (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, false, fmt.Errorf("list %s: %w", prefix, c.kvErr(prefix, "list", err))
	}
	return keys, meta.ResultsFilteredByACLs, nil
}
