/*
 * rbee/backend.h - the rbee-hive backend plugin ABI.
 *
 * A backend plugin is a shared object that rbee-hive dlopen()s at start-up, one per worker
 * backend (cpu, cuda, metal, or a third party's). It exports exactly one `const` descriptor,
 * `struct rbee_backend`, under a symbol derived from its file name:
 *
 *     rbee_backend_<name>.so   ->   rbee_backend_<name>_descriptor
 *
 * e.g. `rbee_backend_cuda.so` exports `rbee_backend_cuda_descriptor`, and its `name` field must be
 * "cuda". Before calling any plugin code the loader checks, in order: the symbol exists,
 * `abi_major == RBEE_BACKEND_ABI_MAJOR`, `struct_size` is at least the size of the ABI 1.0
 * descriptor, `flags == 0`, and `name` equals the name in the file name. A plugin failing any
 * of these is recorded as "broken" with the reason and never called.
 *
 * Versioning (SQLite style): within one major version structs only grow at the end. New members
 * are appended under a comment naming the minor version that added them, and a reader checks
 * `struct_size` (or `abi_minor`) before touching a member newer than ABI 1.0. Bumping the major
 * version is the only way to change or remove a member.
 *
 * Threading and isolation: `probe` and `enumerate` may touch GPU drivers, so the hive always
 * calls them in a separate, time-limited process (on a background thread of the hive: no
 * request waits for them); they may crash or hang without harming the daemon. The probe child
 * and the daemon load the very same file (the daemon holds it open): a plugin file replaced on
 * disk is not reloaded until the hive restarts. `build_env`, `verify` and `spawn` run inside the daemon, possibly from several threads
 * at once; they must be reentrant and must not touch GPU drivers (everything they need about a
 * device is passed in as a `struct rbee_device`).
 *
 * Plugins never reach into the hive: everything they may use is in `struct rbee_host`.
 * All strings are NUL-terminated UTF-8. All functions returning `int` return RBEE_OK (0) or a
 * negative `enum rbee_status`, and explain a failure through `host->fail()`.
 *
 * Build a plugin out of tree with:  cc -shared -fPIC $(pkg-config --cflags rbee-backend) ...
 */
#ifndef RBEE_BACKEND_H
#define RBEE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** ABI version of this header. The loader refuses a plugin whose major differs. */
#define RBEE_BACKEND_ABI_MAJOR 1
/** Minor version: grows when members are appended; older plugins keep loading. */
#define RBEE_BACKEND_ABI_MINOR 2

/**
 * The hwloc API the hive's `host->topology()` object belongs to: a plugin may use that topology
 * only with an hwloc of the same major version (hwloc's own rule). The exact version the running
 * hive was built with is `host->hwloc_api_version` (ABI 1.2); compare its major,
 * `host->hwloc_api_version >> 16`, with your HWLOC_API_VERSION >> 16.
 */
#define RBEE_BACKEND_HWLOC_API_MAJOR 2

/** Device facts (ABI 1.2, `host->device_attr`): a key is 1-63 characters of a-z 0-9 . _ -
 *  starting with a letter; a value is at most 255 bytes of well-formed UTF-8 without control
 *  characters; a device has at most RBEE_DEVICE_ATTR_MAX of them. */
#define RBEE_DEVICE_ATTR_KEY_MAX 64
#define RBEE_DEVICE_ATTR_VALUE_MAX 256
#define RBEE_DEVICE_ATTR_MAX 16

/** Prefix and suffix of the exported descriptor symbol: rbee_backend_<name>_descriptor. */
#define RBEE_BACKEND_SYMBOL_PREFIX "rbee_backend_"
#define RBEE_BACKEND_SYMBOL_SUFFIX "_descriptor"

/** Mark the descriptor for export when building with -fvisibility=hidden. */
#if defined(__GNUC__)
#define RBEE_BACKEND_EXPORT __attribute__((visibility("default")))
#else
#define RBEE_BACKEND_EXPORT
#endif

/** Return codes of every plugin operation. */
enum rbee_status {
	RBEE_OK = 0,
	RBEE_ERR_INVALID = -1,     /**< the request makes no sense for this backend */
	RBEE_ERR_NOT_FOUND = -2,   /**< a file, tool or device the operation needs is missing */
	RBEE_ERR_UNAVAILABLE = -3, /**< the backend cannot do this on this node */
	RBEE_ERR_FAILED = -4,      /**< the operation ran and failed */
	RBEE_ERR_NOMEM = -5,       /**< out of memory */
};

/** Tri-state answer of probe (Open MPI MCA style). */
enum rbee_probe_state {
	RBEE_PROBE_AVAILABLE = 0,   /**< usable on this node; `score` ranks it */
	RBEE_PROBE_UNAVAILABLE = 1, /**< normal "not here" (no driver, wrong OS): not an error */
	RBEE_PROBE_BROKEN = 2,      /**< should work here but does not: reported as an error */
};

/** Largest reason text, including the NUL. Longer reasons are truncated. */
#define RBEE_REASON_MAX 256

/** What probe answers. The host zeroes it before the call. */
struct rbee_probe_result {
	enum rbee_probe_state state;
	/** Rank among available backends, higher = better (ggml style): a spawn that names no
	 *  worker takes the highest-scoring available backend with an installed worker and a
	 *  device. 0 (or less) = never chosen that way, only when named. */
	int score;
	/** Why unavailable or broken, or a short summary when available ("2 GPUs, driver 550.54"). */
	char reason[RBEE_REASON_MAX];
};

/**
 * One device a backend can run workers on. Plugins fill one on the stack, set `struct_size`
 * to sizeof(struct rbee_device) and hand it to `host->device_add()`, which copies it; so the
 * struct can grow at the end without breaking older plugins. Unknown numbers are -1 (signed)
 * or 0 (memory); unknown strings are "".
 */
struct rbee_device {
	uint32_t struct_size;     /**< sizeof(struct rbee_device) as the plugin was built */
	uint32_t index;           /**< the backend-local device number that `--device N` selects */
	char id[32];              /**< "GPU-0", "CPU-0", "METAL-0" */
	char name[128];           /**< marketing name: "NVIDIA H100 80GB HBM3", "AMD EPYC 7763" */
	char device_type[16];     /**< "gpu" or "cpu" */
	char uuid[64];            /**< stable identity: "GPU-8c1a..." for NVIDIA, "" if none */
	char pci_bus_id[32];      /**< lower-case "0000:41:00.0", "" when not a PCI device */
	uint64_t memory_total;    /**< bytes of memory workers on this device can use */
	uint64_t memory_free;     /**< bytes free at enumeration time */
	int32_t cc_major;         /**< CUDA compute capability, -1 when not CUDA */
	int32_t cc_minor;
	char driver_version[32];  /**< "550.54.15", "" when not applicable */
	int32_t numa_node;        /**< OS index of the NUMA node the device is local to, -1 unknown */
	char cpuset[256];         /**< hwloc list string of the local CPUs ("0-7,16-23"), "" unknown */
	char nodeset[64];         /**< hwloc list string of the local NUMA nodes ("0"), "" unknown */
	uint32_t cores;           /**< physical cores local to the device (CPU devices), 0 unknown */
	uint32_t pus;             /**< hardware threads local to the device (CPU devices), 0 unknown */
};

/** A worker the hive asks a plugin about: what `verify` and `spawn` receive. Always passed by
 *  pointer; frozen for ABI 1 (new facts about a worker are appended to the requests instead). */
struct rbee_worker_info {
	const char *worker_id;    /**< installed worker id ("llm-worker-rbee-cpu") */
	const char *binary_path;  /**< absolute path of the installed binary */
	const char *install_dir;  /**< the worker's install root (the package tree) */
	const char *worker_type;  /**< the catalog's worker_type: "cpu", "cuda", "metal"... */
};

/** What `spawn` receives: one worker to start with one model on one device. */
struct rbee_spawn_request {
	uint32_t struct_size;             /**< sizeof as the host was built; read it before newer members */
	const struct rbee_worker_info *worker; /**< the installed worker to run (never NULL) */
	const struct rbee_device *device; /**< the chosen device, as enumerated (never NULL) */
	const char *instance_id;          /**< this running worker's id (also the log file's name) */
	const char *model_id;             /**< catalog id of the model ("org/repo:file.gguf") */
	const char *model_path;           /**< absolute path of the model file */
	uint16_t port;                    /**< the port the worker must listen on */
	const char *hive_url;             /**< where the worker reaches the hive */
};

/** Opaque handles the host passes through; plugins only hand them back to host functions. */
struct rbee_plan;     /* a launch plan being built by spawn */
struct rbee_env;      /* an environment being built by build_env */
struct rbee_report;   /* a verify report being filled */
struct rbee_call;     /* one call into the plugin: carries its error message and narration */

/** Log levels of host->log. */
enum rbee_log_level { RBEE_LOG_DEBUG = 0, RBEE_LOG_INFO = 1, RBEE_LOG_WARN = 2, RBEE_LOG_ERROR = 3 };

/**
 * Services the hive offers a plugin. Passed to every operation; valid only during the call.
 * Every function is safe to call from the thread the operation runs on.
 */
struct rbee_host {
	uint32_t struct_size;  /**< sizeof(struct rbee_host) as the hive was built */
	uint32_t abi_minor;    /**< the hive's RBEE_BACKEND_ABI_MINOR */
	struct rbee_call *call;

	/** Narrate one line: into the current job's stream when there is one, else the hive log. */
	void (*log)(struct rbee_call *call, enum rbee_log_level level, const char *fmt, ...)
		__attribute__((format(printf, 3, 4)));
	/** Explain why the operation fails; the last message wins. Returns `status` for chaining. */
	int (*fail)(struct rbee_call *call, int status, const char *fmt, ...)
		__attribute__((format(printf, 3, 4)));

	/** The node's hwloc topology (a `hwloc_topology_t`, already loaded, I/O devices included).
	 *  Read-only: do not modify or destroy it. NULL if hwloc could not load a topology. */
	void *(*topology)(struct rbee_call *call);
	/** Paths in use: "home" (cache root), "workers", "models", "logs", "plugins". NULL if unknown. */
	const char *(*path)(struct rbee_call *call, const char *which);
	/** Getenv of the hive's (scrubbed) environment. */
	const char *(*getenv)(struct rbee_call *call, const char *name);

	/** Enumerate: report one device (copied; see struct rbee_device). */
	int (*device_add)(struct rbee_call *call, const struct rbee_device *device);

	/** build_env: set a variable in the environment the PKGBUILD phases run with. */
	int (*env_set)(struct rbee_env *env, const char *name, const char *value);

	/** verify: add one check to the report. ok=0 fails the verification. */
	int (*report_check)(struct rbee_report *report, const char *check, int ok, const char *detail);

	/** spawn: fill the plan's argv from the worker's launch template (or the rbee worker
	 *  contract), placeholders substituted. Most plugins call this first, then add to it. */
	int (*plan_default_argv)(struct rbee_plan *plan, const struct rbee_spawn_request *req);
	/** spawn: append one argument to the plan's argv. */
	int (*plan_arg)(struct rbee_plan *plan, const char *arg);
	/** spawn: set (value != NULL) or remove (value == NULL) a variable in the child's env. */
	int (*plan_env)(struct rbee_plan *plan, const char *name, const char *value);
	/** spawn: bind the child's CPUs to an hwloc list string ("0-7,16-23"). */
	int (*plan_bind_cpus)(struct rbee_plan *plan, const char *cpuset_list);
	/** spawn: bind the child's memory to the NUMA nodes of an hwloc list string ("0"). */
	int (*plan_bind_memory)(struct rbee_plan *plan, const char *nodeset_list);

	/** Run argv (argv[0] searched in PATH) with a time limit; capture up to outlen-1 bytes of
	 *  stdout+stderr into out (NUL-terminated). Returns RBEE_OK and the wait status in *status,
	 *  or a negative status if it could not be started or timed out (the child is killed). */
	int (*run)(struct rbee_call *call, const char *const argv[], int timeout_ms, char *out,
		   size_t outlen, int *status);

	/* --- ABI 1.1 --- (check `host->struct_size > offsetof(struct rbee_host, last_error)`) */
	/** Why the last host service of this call that failed, refused its input or answered NULL
	 *  for a bad name (`path`) did so, or the last host->fail() message; "" when none did.
	 *  Valid until the next service call. A refusal is also logged with the plugin's and the
	 *  service's names, and becomes the operation's error when the plugin then fails. */
	const char *(*last_error)(struct rbee_call *call);

	/* --- ABI 1.2 --- (check `host->struct_size > offsetof(struct rbee_host, plugin_state)`) */
	/** HWLOC_API_VERSION of the hwloc the hive was built with (0x00020b00 = 2.11.0): the
	 *  topology() object is that hwloc's. See RBEE_BACKEND_HWLOC_API_MAJOR. */
	uint32_t hwloc_api_version;
	/** enumerate: attach a string fact to a device already reported with device_add, by its id
	 *  ("gfx_target" = "gfx90a" for a ROCm GPU). Shown under the device's "attributes" in
	 *  /v1/capabilities and /v1/backends. Setting a key again replaces its value. Refused, with
	 *  last_error saying why, outside enumerate, for an unknown device, or past the limits
	 *  above; a refusal costs only that fact, not the device. */
	int (*device_attr)(struct rbee_call *call, const char *device_id, const char *key,
			   const char *value);
	/** What the plugin's init() stored in *state for this process: the probe child's own in
	 *  probe and enumerate, the daemon's in build_env, verify and spawn. NULL when the plugin
	 *  has no init or stored nothing. */
	void *(*plugin_state)(struct rbee_call *call);
};

/**
 * The descriptor a plugin exports. Every operation pointer may be NULL when the backend has
 * nothing to do for it (the host then uses its default: no devices, empty build environment,
 * no extra verify checks, the default argv with no binding). A NULL `probe` makes the backend
 * available with score 0 and says so in its reason: a score of 0 is never chosen for a spawn
 * that names no worker (the backend is used only when named). Give a probe to be ranked.
 */
struct rbee_backend {
	/* --- ABI 1.0 --- */
	uint32_t abi_major;    /**< RBEE_BACKEND_ABI_MAJOR the plugin was built against */
	uint32_t abi_minor;    /**< RBEE_BACKEND_ABI_MINOR the plugin was built against */
	uint32_t struct_size;  /**< sizeof(struct rbee_backend) as the plugin was built */
	uint32_t flags;        /**< reserved, must be 0 */
	const char *name;      /**< backend name, equal to the one in the file name: "cuda" */
	const char *version;   /**< the plugin's own version string */
	const char *description; /**< one line for `rbee hive backends` */

	/** Can this backend run on this node? Runs in a separate time-limited process. */
	int (*probe)(const struct rbee_host *host, struct rbee_probe_result *out);
	/** Report every device through host->device_add(). Runs in the same separate process,
	 *  only after probe answered available. */
	int (*enumerate)(const struct rbee_host *host);
	/** Check the toolchain a PKGBUILD of this backend needs and contribute variables to its
	 *  build environment (CUDA_HOME, target architectures, MAKEFLAGS...). `devices` are this
	 *  backend's enumerated devices. Fails with a clear message when the toolchain is missing. */
	int (*build_env)(const struct rbee_host *host, const struct rbee_device *devices,
			 size_t ndevices, struct rbee_env *env);
	/** Backend-specific checks that an installed worker can run on this node's devices
	 *  (the host already checked existence, permissions, ELF machine, libraries, sha256). */
	int (*verify)(const struct rbee_host *host, const struct rbee_worker_info *worker,
		      const struct rbee_device *devices, size_t ndevices, struct rbee_report *report);
	/** Turn a spawn request into an exact launch plan: argv, environment, binding. The hive
	 *  forks, applies the binding, execs and supervises. */
	int (*spawn)(const struct rbee_host *host, const struct rbee_spawn_request *req,
		     struct rbee_plan *plan);

	/* --- ABI 1.2 --- (the host reads these only when `struct_size` covers them) */
	/** Set up the plugin's own state once per process, before any other operation: in each
	 *  probe child before probe (GPU drivers allowed there), and in the daemon once it loads the
	 *  plugin (no GPU drivers: the daemon rule above). Whatever it stores in *state comes back
	 *  from host->plugin_state() in every later call of that process; calls in the daemon may
	 *  run on several threads at once, so state they change needs the plugin's own locking.
	 *  A failure (with host->fail) makes the backend broken with that reason. May be NULL. */
	int (*init)(const struct rbee_host *host, void **state);
	/** Release what init set up; called once when the daemon unloads the plugin (hive
	 *  shutdown), never while another call of the plugin is running. May be NULL. */
	void (*fini)(void *state);
};

/** Declare a plugin's descriptor with its exported name: RBEE_BACKEND_DEFINE(cuda) = {...}; */
#define RBEE_BACKEND_DEFINE(name) \
	RBEE_BACKEND_EXPORT extern const struct rbee_backend rbee_backend_##name##_descriptor; \
	RBEE_BACKEND_EXPORT const struct rbee_backend rbee_backend_##name##_descriptor

/** Fill the ABI header fields of a descriptor. */
#define RBEE_BACKEND_HEADER(backend_name)                                                   \
	.abi_major = RBEE_BACKEND_ABI_MAJOR, .abi_minor = RBEE_BACKEND_ABI_MINOR,           \
	.struct_size = sizeof(struct rbee_backend), .flags = 0, .name = (backend_name)

#ifdef __cplusplus
}
#endif
#endif /* RBEE_BACKEND_H */
