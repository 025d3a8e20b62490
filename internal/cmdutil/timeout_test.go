package cmdutil

import (
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// TestTimeoutBound: the bound on each request is the global --timeout (or
// MICROCTL_TIMEOUT, or the default), capped by the running command's own
// --timeout, which cobra fills wherever on the line it is written.
func TestTimeoutBound(t *testing.T) {
	tests := []struct {
		name string
		env  string
		args []string
		want time.Duration
	}{
		{"default", "", []string{"plain"}, DefaultTimeout},
		{"global flag", "", []string{"--timeout", "2s", "plain"}, 2 * time.Second},
		{"env", "3s", []string{"plain"}, 3 * time.Second},
		{"global flag over env", "3s", []string{"--timeout", "2s", "plain"}, 2 * time.Second},
		{"global 0 waits forever", "", []string{"--timeout", "0", "plain"}, 0},
		{"own default caps the default", "", []string{"own"}, 10 * time.Second},
		{"own default does not raise a shorter env", "1s", []string{"own"}, time.Second},
		{"--timeout before the command reaches the command's own", "", []string{"--timeout", "2s", "own"}, 2 * time.Second},
		{"own --timeout after the command", "", []string{"own", "--timeout", "2s"}, 2 * time.Second},
		{"own longer than env: env wins", "1s", []string{"own", "--timeout", "5m"}, time.Second},
		{"own longer than the default: the default wins", "", []string{"own", "--timeout", "5m"}, DefaultTimeout},
		{"own under a global that waits forever", "0", []string{"own"}, 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(TimeoutEnv, tt.env)
			var tf TimeoutFlag
			var ran *cobra.Command
			root := &cobra.Command{Use: "root", PersistentPreRun: func(cmd *cobra.Command, _ []string) { tf.Use(cmd); ran = cmd }}
			tf.Register(root.PersistentFlags())
			plain := &cobra.Command{Use: "plain", Run: func(*cobra.Command, []string) {}}
			var ownVal time.Duration
			own := &cobra.Command{Use: "own", Run: func(*cobra.Command, []string) {}}
			own.Flags().DurationVar(&ownVal, "timeout", 10*time.Second, "the operation's budget")
			root.AddCommand(plain, own)
			root.SetArgs(tt.args)
			if err := root.Execute(); err != nil {
				t.Fatal(err)
			}
			if ran == nil {
				t.Fatal("PersistentPreRun did not run")
			}
			got, err := tf.Duration()
			if err != nil || got != tt.want {
				t.Errorf("Duration() = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}
