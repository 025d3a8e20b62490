package stack

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/microctl/microctl/internal/cmdutil"
)

func TestScaleArgs(t *testing.T) {
	ios, _, _, _ := cmdutil.Test()
	f := cmdutil.NewFactory(ios)
	var got *ScaleOptions
	run := func(args ...string) error {
		cmd := NewCmdScale(f, func(_ context.Context, o *ScaleOptions) error { got = o; return nil })
		cmd.SetArgs(args)
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(&bytes.Buffer{})
		return cmd.ExecuteContext(context.Background())
	}
	if err := run("shop_api=3", "shop_db=0"); err != nil {
		t.Fatal(err)
	}
	if got.Replicas["shop_api"] != 3 || got.Replicas["shop_db"] != 0 || len(got.Replicas) != 2 {
		t.Errorf("replicas %v", got.Replicas)
	}
	for _, bad := range []string{"shop_api", "shop_api=", "=3", "shop_api=-1", "shop_api=three", "shop_api=1.5"} {
		err := run(bad)
		var ue *cmdutil.UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), bad) {
			t.Errorf("%q: got %v, want a usage error naming it", bad, err)
		}
	}
}
