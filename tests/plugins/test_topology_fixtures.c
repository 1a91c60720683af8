/*
 * test_topology_fixtures.c - every hwloc XML topology under tests/ loads with hwloc's built-in
 * minimal XML parser. A fresh Debian machine has no libxml2 plugin for hwloc (libhwloc-plugins
 * is only a recommendation), and the minimal parser refuses things libxml2 accepts, such as
 * comments: a fixture that only loads through libxml2 passes here and fails in CI.
 *
 * The fixture paths come from CMake (RBEE_TOPOLOGY_FIXTURES, ';'-separated), found by globbing
 * tests/ for *.xml, so a new fixture is covered without touching this file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <hwloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int load_file(const char *path)
{
	hwloc_topology_t t;
	int rc;

	if (hwloc_topology_init(&t) != 0)
		return -1;
	rc = hwloc_topology_set_xml(t, path);
	if (rc == 0)
		rc = hwloc_topology_load(t);
	hwloc_topology_destroy(t);
	return rc;
}

static int load_buffer(const char *xml)
{
	hwloc_topology_t t;
	int rc;

	if (hwloc_topology_init(&t) != 0)
		return -1;
	rc = hwloc_topology_set_xmlbuffer(t, xml, (int)strlen(xml) + 1);
	if (rc == 0)
		rc = hwloc_topology_load(t);
	hwloc_topology_destroy(t);
	return rc;
}

#define MINIMAL_TOPOLOGY                                                                           \
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"                                             \
	"<!DOCTYPE topology SYSTEM \"hwloc2.dtd\">\n"                                              \
	"%s<topology version=\"2.0\">\n"                                                           \
	"  <object type=\"Machine\" os_index=\"0\" cpuset=\"0x1\" complete_cpuset=\"0x1\""        \
	" allowed_cpuset=\"0x1\" nodeset=\"0x1\" complete_nodeset=\"0x1\""                         \
	" allowed_nodeset=\"0x1\" gp_index=\"1\">\n"                                               \
	"    <object type=\"NUMANode\" os_index=\"0\" cpuset=\"0x1\" complete_cpuset=\"0x1\""     \
	" nodeset=\"0x1\" complete_nodeset=\"0x1\" gp_index=\"2\" local_memory=\"1073741824\"/>\n" \
	"    <object type=\"PU\" os_index=\"0\" cpuset=\"0x1\" complete_cpuset=\"0x1\""           \
	" nodeset=\"0x1\" complete_nodeset=\"0x1\" gp_index=\"3\"/>\n"                             \
	"  </object>\n"                                                                            \
	"</topology>\n"

/* The check below means something only if the minimal parser is the one in use: it refuses a
 * comment that libxml2 would skip. */
static void the_minimal_parser_is_in_use(void **state)
{
	char xml[2048];

	(void)state;
	snprintf(xml, sizeof(xml), MINIMAL_TOPOLOGY, "");
	assert_int_equal(load_buffer(xml), 0);
	snprintf(xml, sizeof(xml), MINIMAL_TOPOLOGY, "<!-- a comment -->\n");
	assert_int_not_equal(load_buffer(xml), 0);
}

static void every_fixture_loads(void **state)
{
	char *list = strdup(RBEE_TOPOLOGY_FIXTURES);
	char *save = NULL;
	int n = 0, bad = 0;

	(void)state;
	assert_non_null(list);
	for (char *p = strtok_r(list, ";", &save); p; p = strtok_r(NULL, ";", &save)) {
		n++;
		if (load_file(p) != 0) {
			fprintf(stderr, "%s: does not load with hwloc's minimal XML parser\n", p);
			bad++;
		}
	}
	free(list);
	assert_true(n > 0);
	assert_int_equal(bad, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(the_minimal_parser_is_in_use),
		cmocka_unit_test(every_fixture_loads),
	};

	/* Before hwloc reads its environment: import and export through the built-in parser. */
	setenv("HWLOC_LIBXML", "0", 1);
	setenv("HWLOC_LIBXML_IMPORT", "0", 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
