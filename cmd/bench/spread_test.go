package bench

import (
	"strings"
	"testing"

	"github.com/microctl/microctl/internal/cmdtest"
)

func TestWorkersFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{args: []string{"http://127.0.0.1:1/", "--workers", "3", "-c", "3", "-R", "100", "--placement", "node.role==worker"}},
		{args: []string{"--workers", "2"}, wantErr: "--workers does not go with no URL"},
		{args: []string{"http://127.0.0.1:1/", "--workers", "3", "-c", "2"}, wantErr: "-c 2 cannot be shared by 3 workers"},
		{args: []string{"http://127.0.0.1:1/", "--workers", "2", "-n", "10"}, wantErr: "--workers does not go with -n"},
		{args: []string{"http://127.0.0.1:1/", "--workers", "2", "--slo", "p99 < 1s"}, wantErr: "--workers does not go with --slo"},
		{args: []string{"http://127.0.0.1:1/", "--image", "x:1"}, wantErr: "--image goes with --workers"},
		{args: []string{"http://127.0.0.1:1/", "--workers", "2", "--placement", "worker"}, wantErr: "want a constraint"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			opts, err := cmdtest.Parse(t, NewCmdBench, tt.args...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if opts.spread.Workers != 3 || opts.spread.Image != DefaultWorkerImage || opts.spread.Placement[0] != "node.role==worker" {
				t.Errorf("spread %+v", opts.spread)
			}
		})
	}
}
