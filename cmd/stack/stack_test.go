package stack

import (
	"errors"
	"strings"
	"testing"

	"github.com/microctl/microctl/internal/cmdtest"
	"github.com/microctl/microctl/internal/cmdutil"
)

func TestScaleArgs(t *testing.T) {
	var got *ScaleOptions
	run := func(args ...string) (err error) {
		got, err = cmdtest.Parse(t, NewCmdScale, args...)
		return err
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
