package key

import (
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/pkg/keys"
)

func addProductionFlags(pf *pflag.FlagSet, rf *RingFlags) {
	pf.Var((*days)(&rf.AuditKeep), "audit-keep", "on every write, also delete audit records older than this (e.g. 90d; default: keep all)")
	pf.StringVar(&rf.KEKFile, "kek-file", envOr("MICROCTL_KEK_FILE", ""),
		"file holding the key-encryption key of a sealed ring: 32 random bytes, base64, as `openssl rand -base64 32` writes them (env MICROCTL_KEK_FILE; in Swarm a Docker secret)")
}

// kek reads --kek-file, or returns nil without one. A file that is not a
// KEK is a usage error: one line naming the file, never its content.
func (rf *RingFlags) kek() (*keys.KEK, error) {
	if rf.KEKFile == "" {
		return nil, nil
	}
	k, err := keys.ReadKEKFile(rf.KEKFile)
	if err != nil {
		return nil, cmdutil.Usagef("--kek-file %v", err)
	}
	return k, nil
}

// addProductionCommands adds the commands of issue 16 (seal, rekey, serve,
// log, schedule) to the key group.
func addProductionCommands(cmd *cobra.Command, f *cmdutil.Factory, rf *RingFlags) {
	cmd.AddCommand(
		NewCmdSeal(f, rf, nil),
		NewCmdRekey(f, rf, nil),
		NewCmdServe(f, rf, nil),
		NewCmdLog(f, rf, nil),
		NewCmdSchedule(f, rf, nil),
	)
}
