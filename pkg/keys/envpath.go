package keys

import "os"

// EnvPath names the environment variable that moves the key ring.
const EnvPath = "MICROCTL_KEY_PATH"

// PathFromEnv is the ring path a command starts from: $MICROCTL_KEY_PATH,
// else DefaultPath. It is the one place the variable is read, so `key`,
// `bench --jwt` and `doctor` always look at the same ring.
func PathFromEnv() string {
	if v := os.Getenv(EnvPath); v != "" {
		return v
	}
	return DefaultPath
}
