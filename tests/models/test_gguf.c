/* The GGUF header reader: facts from a file the test writes, and no crash, hang or huge
 * allocation on truncated, corrupt or hostile input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "models/gguf.h"
#include "gguf_writer.h"
#include "rb_fs.h"

static void reads_the_facts_of_a_small_model(void **state)
{
	(void)state;
	struct gw w;
	struct rb_gguf_facts f;
	struct rb_err err = RB_ERR_INIT;
	gw_tiny_model(&w);
	assert_int_equal(rb_gguf_parse(w.b.data, w.b.len, &f, &err), 0);
	assert_int_equal(f.version, 3);
	assert_int_equal(f.tensor_count, 2);
	assert_int_equal(f.kv_count, 7);
	assert_string_equal(f.architecture, "llama");
	assert_string_equal(f.name, "Tiny Llama");
	assert_int_equal(f.file_type, 15);
	assert_string_equal(f.quantization, "Q4_K_M");
	assert_int_equal(f.context_length, 4096);
	assert_int_equal(f.parameter_count, 4 * 8 + 8); /* summed over the tensor infos */
	rb_buf_release(&w.b);
}

static void parameter_count_key_wins_over_the_tensor_sum(void **state)
{
	(void)state;
	struct gw w;
	struct rb_gguf_facts f;
	uint64_t d[1] = { 10 };
	gw_begin(&w, 2);
	gw_kv_u64(&w, "general.parameter_count", 7000000000ull);
	gw_kv_u32(&w, "qwen2.context_length", 32768); /* before the architecture is known */
	gw_kv_str(&w, "general.architecture", "qwen2");
	gw_kv_u32(&w, "llama.context_length", 1);     /* another architecture's: ignored */
	gw_kv_str(&w, "general.size_label", "7B");
	gw_tensor(&w, "t", 1, d);
	gw_finish(&w);
	assert_int_equal(rb_gguf_parse(w.b.data, w.b.len, &f, NULL), 0);
	assert_int_equal(f.parameter_count, 7000000000ull);
	assert_int_equal(f.context_length, 32768);
	assert_string_equal(f.size_label, "7B");
	assert_int_equal(f.file_type, -1);
	assert_string_equal(f.quantization, "");
	rb_buf_release(&w.b);
}

static void reads_from_a_file(void **state)
{
	(void)state;
	struct gw w;
	struct rb_gguf_facts f;
	struct rb_err err = RB_ERR_INIT;
	char path[] = "/tmp/rbee-gguf-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	gw_tiny_model(&w);
	assert_int_equal(write(fd, w.b.data, w.b.len), (ssize_t)w.b.len);
	assert_int_equal(rb_gguf_read(path, &f, &err), 0);
	assert_string_equal(f.quantization, "Q4_K_M");
	assert_int_equal(ftruncate(fd, (off_t)w.b.len - 3), 0);
	assert_int_equal(rb_gguf_read(path, &f, &err), -RB_EINVAL);
	assert_non_null(strstr(err.msg, "truncated"));
	close(fd);
	unlink(path);
	assert_int_equal(rb_gguf_read(path, &f, &err), -RB_ENOTFOUND);
	rb_buf_release(&w.b);
}

static void every_truncation_is_an_error(void **state)
{
	(void)state;
	struct gw w;
	struct rb_gguf_facts f;
	struct rb_err err = RB_ERR_INIT;
	gw_tiny_model(&w);
	for (size_t n = 0; n < w.b.len; n++) {
		char *copy = malloc(n ? n : 1); /* exactly n bytes, so ASan sees any overread */
		memcpy(copy, w.b.data, n);
		assert_int_equal(rb_gguf_parse(copy, n, &f, &err), -RB_EINVAL);
		assert_string_equal(f.architecture, "");
		free(copy);
	}
	rb_buf_release(&w.b);
}

static void not_gguf_and_old_versions_are_refused(void **state)
{
	(void)state;
	struct rb_gguf_facts f;
	struct rb_err err = RB_ERR_INIT;
	const char text[] = "this is a safetensors file, honest";
	assert_int_equal(rb_gguf_parse(text, sizeof(text), &f, &err), -RB_EINVAL);
	assert_non_null(strstr(err.msg, "does not start with \"GGUF\""));
	struct gw w;
	gw_begin(&w, 1);
	gw_finish(&w);
	assert_int_equal(rb_gguf_parse(w.b.data, w.b.len, &f, &err), -RB_EINVAL);
	assert_non_null(strstr(err.msg, "version 1"));
	rb_buf_release(&w.b);
	gw_begin(&w, 99);
	gw_finish(&w);
	assert_int_equal(rb_gguf_parse(w.b.data, w.b.len, &f, &err), -RB_EINVAL);
	assert_non_null(strstr(err.msg, "unsupported GGUF version 99"));
	rb_buf_release(&w.b);
}

static void hostile_counts_fail_fast(void **state)
{
	(void)state;
	struct rb_gguf_facts f;
	struct rb_err err = RB_ERR_INIT;
	struct gw w;
	/* A huge metadata count. */
	gw_begin(&w, 3);
	gw_kv_str(&w, "general.architecture", "llama");
	gw_finish(&w);
	memset(w.b.data + 16, 0xff, 8);
	assert_int_equal(rb_gguf_parse(w.b.data, w.b.len, &f, &err), -RB_EINVAL);
	rb_buf_release(&w.b);
	/* A string claiming 2^63 bytes. */
	gw_begin(&w, 3);
	gw_str(&w, "general.architecture");
	gw_u32(&w, 8);
	gw_u64(&w, 1ull << 63);
	w.n_kv = 1;
	gw_finish(&w);
	assert_int_equal(rb_gguf_parse(w.b.data, w.b.len, &f, &err), -RB_EINVAL);
	rb_buf_release(&w.b);
	/* An array of 2^62 uint64 (the byte count overflows 64 bits). */
	gw_begin(&w, 3);
	gw_str(&w, "x");
	gw_u32(&w, 9);
	gw_u32(&w, 10);
	gw_u64(&w, 1ull << 62);
	w.n_kv = 1;
	gw_finish(&w);
	assert_int_equal(rb_gguf_parse(w.b.data, w.b.len, &f, &err), -RB_EINVAL);
	rb_buf_release(&w.b);
	/* Arrays of arrays nested deeper than allowed. */
	gw_begin(&w, 3);
	gw_str(&w, "deep");
	gw_u32(&w, 9);
	for (int i = 0; i < 6; i++) {
		gw_u32(&w, 9);
		gw_u64(&w, 1);
	}
	gw_u32(&w, 4);
	gw_u64(&w, 0);
	w.n_kv = 1;
	gw_finish(&w);
	assert_int_equal(rb_gguf_parse(w.b.data, w.b.len, &f, &err), -RB_EINVAL);
	assert_non_null(strstr(err.msg, "nested"));
	rb_buf_release(&w.b);
	/* An unknown value type. */
	gw_begin(&w, 3);
	gw_str(&w, "k");
	gw_u32(&w, 77);
	gw_u32(&w, 0);
	w.n_kv = 1;
	gw_finish(&w);
	assert_int_equal(rb_gguf_parse(w.b.data, w.b.len, &f, &err), -RB_EINVAL);
	assert_non_null(strstr(err.msg, "unknown value type 77"));
	rb_buf_release(&w.b);
	/* A tensor with too many dimensions. */
	uint64_t dims[5] = { 1, 1, 1, 1, 1 };
	gw_begin(&w, 3);
	gw_tensor(&w, "t", 5, dims);
	gw_finish(&w);
	assert_int_equal(rb_gguf_parse(w.b.data, w.b.len, &f, &err), -RB_EINVAL);
	rb_buf_release(&w.b);
}

/* Random bit flips and truncations: any answer is fine except a crash or sanitizer report. */
static void survives_random_corruption(void **state)
{
	(void)state;
	struct gw w;
	struct rb_gguf_facts f;
	gw_tiny_model(&w);
	srand(12345);
	int ok = 0;
	for (int iter = 0; iter < 20000; iter++) {
		size_t n = (size_t)rand() % (w.b.len + 1);
		if (iter % 2)
			n = w.b.len;
		char *copy = malloc(n ? n : 1);
		memcpy(copy, w.b.data, n);
		int flips = 1 + rand() % 4;
		for (int i = 0; n && i < flips; i++)
			copy[(size_t)rand() % n] ^= (char)(1 << (rand() % 8));
		if (rb_gguf_parse(copy, n, &f, NULL) == 0)
			ok++;
		free(copy);
	}
	assert_true(ok > 0); /* flips in string bytes leave valid files */
	rb_buf_release(&w.b);
}

static void file_type_names(void **state)
{
	(void)state;
	assert_string_equal(rb_gguf_file_type_name(0), "F32");
	assert_string_equal(rb_gguf_file_type_name(1), "F16");
	assert_string_equal(rb_gguf_file_type_name(2), "Q4_0");
	assert_string_equal(rb_gguf_file_type_name(7), "Q8_0");
	assert_string_equal(rb_gguf_file_type_name(15), "Q4_K_M");
	assert_string_equal(rb_gguf_file_type_name(17), "Q5_K_M");
	assert_string_equal(rb_gguf_file_type_name(32), "BF16");
	assert_null(rb_gguf_file_type_name(5));
	assert_null(rb_gguf_file_type_name(-1));
	assert_null(rb_gguf_file_type_name(100000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(reads_the_facts_of_a_small_model),
		cmocka_unit_test(parameter_count_key_wins_over_the_tensor_sum),
		cmocka_unit_test(reads_from_a_file),
		cmocka_unit_test(every_truncation_is_an_error),
		cmocka_unit_test(not_gguf_and_old_versions_are_refused),
		cmocka_unit_test(hostile_counts_fail_fast),
		cmocka_unit_test(survives_random_corruption),
		cmocka_unit_test(file_type_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
