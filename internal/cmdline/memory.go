package cmdline

import (
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime/debug"

	"github.com/pinfold/pinfold/configs"
)

// SetMemoryLimit applies a daemon's soft memory limit: a limit on the
// memory the Go runtime manages (the heap, which holds badger's memtables,
// caches and table builders too), as GOMEMLIMIT would set it. Near the
// limit the garbage collector runs more often, trading CPU for memory; it
// never fails an allocation. Badger's mapped files are not covered: they
// are file cache, which the kernel reclaims under pressure.
//
// flag is the --memory text: it wins when given ("0" removes any limit).
// Else GOMEMLIMIT from the environment applies as the runtime read it.
// Else fallback (a configured limit; 0 for none) applies.
func SetMemoryLimit(flag string, fallback configs.Size, log *slog.Logger) error {
	size := fallback
	switch {
	case flag != "":
		var err error
		if size, err = configs.ParseSize(flag); err != nil {
			return fmt.Errorf("--memory: %w", err)
		}
		if size != 0 && size < configs.MinMemory {
			return fmt.Errorf("--memory %s: 0 (no limit) or at least %s", flag, configs.Size(configs.MinMemory))
		}
		if env := os.Getenv("GOMEMLIMIT"); env != "" {
			log.Info("--memory overrides GOMEMLIMIT", "GOMEMLIMIT", env, "memory", size.String())
		}
	case os.Getenv("GOMEMLIMIT") != "":
		return nil
	}
	if size == 0 {
		debug.SetMemoryLimit(math.MaxInt64)
		return nil
	}
	debug.SetMemoryLimit(int64(size))
	return nil
}
