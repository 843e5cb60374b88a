package cmdline

import (
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/pinfold/pinfold/configs"
)

// minMemoryLimit is the least --memory taken: below it the garbage
// collector would run without pause for the daemon's fixed needs (badger's
// memtables, caches and table builders, see package store).
const minMemoryLimit = 64 << 20

// SetMemoryLimit applies a daemon's --memory setting: a soft limit on the
// memory the Go runtime manages (the heap, which holds badger's memtables,
// caches and table builders too), as GOMEMLIMIT would set it. Near the
// limit the garbage collector runs more often, trading CPU for memory; it
// never fails an allocation. Empty text leaves the limit alone, so GOMEMLIMIT
// from the environment still applies. Badger's mapped files are not covered:
// they are file cache, which the kernel reclaims under pressure.
func SetMemoryLimit(text string, log *slog.Logger) error {
	if text == "" {
		return nil
	}
	size, err := configs.ParseSize(text)
	if err != nil {
		return fmt.Errorf("--memory: %w", err)
	}
	if size < minMemoryLimit {
		return fmt.Errorf("--memory %s: at least %s", text, configs.Size(minMemoryLimit))
	}
	if env := os.Getenv("GOMEMLIMIT"); env != "" {
		log.Info("--memory overrides GOMEMLIMIT", "GOMEMLIMIT", env, "memory", size.String())
	}
	debug.SetMemoryLimit(int64(size))
	return nil
}
