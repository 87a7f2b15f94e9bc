/* tg_csv_load: CSV files written by the test (headers, quotes, CRLF, other delimiters,
 * label columns of integers and strings) read back against hand values, and every
 * malformed file failing with the line and column in its message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "readers_files.h"
#include "tapegrad/data.h"

static void check_values(int *tg_failed_, tg_tensor *t, int64_t rows, int64_t cols, const double *want, double tol) {
    CHECK(t && tg_ndim(t) == 2 && tg_size(t, 0) == rows && tg_size(t, 1) == cols);
    if (!t || tg_ndim(t) != 2 || tg_size(t, 0) != rows || tg_size(t, 1) != cols) return;
    CHECK(tg_device_of(t) == tg_test_device());
    double *v = tg_test_values(t);
    for (int64_t i = 0; v && i < rows * cols; i++) CHECK_NEAR(v[i], want[i], tol);
    free(v);
}

static void check_labels(int *tg_failed_, tg_tensor *t, int64_t n, const int64_t *want) {
    CHECK(t && tg_dtype_of(t) == TG_I64 && tg_ndim(t) == 1 && tg_size(t, 0) == n);
    if (!t || tg_size(t, 0) != n) return;
    int64_t *v = malloc((size_t)n * sizeof *v);
    CHECK(tg_copy_to_host(t, v, (size_t)n * sizeof *v) == TG_OK);
    for (int64_t i = 0; i < n; i++) CHECK(v[i] == want[i]);
    free(v);
}

static bool names_are(const tg_strings *s, int n, const char *const *want) {
    if (tg_strings_count(s) != n) return false;
    for (int i = 0; i < n; i++)
        if (strcmp(tg_strings_get(s, i), want[i]) != 0) return false;
    return true;
}

TEST(header_and_values) {
    const char *p = write_text("basic.csv", "a,b,c\n1,2,3\n4.5, -5 ,6e2\n");
    tg_csv_table t;
    CHECK(tg_csv_load(p, &(tg_csv_opts){ .header = true }, tg_test_device(), &t) == TG_OK);
    CHECK(tg_dtype_of(t.data) == TG_F32 && t.labels == NULL && t.classes == NULL);
    check_values(tg_failed_, t.data, 2, 3, (const double[]){ 1, 2, 3, 4.5, -5, 600 }, 0);
    CHECK(names_are(t.columns, 3, (const char *const[]){ "a", "b", "c" }));
    tg_csv_table_clear(&t);
    CHECK(t.columns == NULL && t.data == NULL);
}

TEST(no_header_crlf_blank_lines_f64) {
    const char *p = write_text("crlf.csv", "0.1,2\r\n\r\n3,1e-300\r\n\r\n\r\n");
    tg_csv_table t;
    CHECK(tg_csv_load(p, &(tg_csv_opts){ .dtype = TG_F64 }, tg_test_device(), &t) == TG_OK);
    CHECK(tg_dtype_of(t.data) == TG_F64 && t.columns == NULL);
    double v[4];
    CHECK(tg_copy_to_host(t.data, v, sizeof v) == TG_OK);
    CHECK(v[0] == 0.1 && v[1] == 2 && v[2] == 3 && v[3] == 1e-300); /* f64 keeps strtod's exact double */
    /* no final line end; a lone CR ends a line too */
    p = write_text("cr.csv", "1;2\r3;4");
    CHECK(tg_csv_load(p, &(tg_csv_opts){ .delimiter = ';' }, tg_test_device(), &t) == TG_OK);
    check_values(tg_failed_, t.data, 2, 2, (const double[]){ 1, 2, 3, 4 }, 0);
}

TEST(quoted_fields) {
    /* quoted numbers, a delimiter and a line break and "" inside a quoted name */
    const char *p = write_text("quoted.csv", "\"x\",\"the \"\"y\"\", z\"\n\"1.5\",2\n\"3\",\"4\"\n");
    tg_csv_table t;
    CHECK(tg_csv_load(p, &(tg_csv_opts){ .header = true }, tg_test_device(), &t) == TG_OK);
    check_values(tg_failed_, t.data, 2, 2, (const double[]){ 1.5, 2, 3, 4 }, 0);
    CHECK(names_are(t.columns, 2, (const char *const[]){ "x", "the \"y\", z" }));
    tg_csv_table_clear(&t);
}

TEST(integer_labels) {
    const char *p = write_text("ilab.csv", "f1,label,f2\n1,3,2\n4,0,5\n6,-2,7\n");
    tg_csv_table t;
    CHECK(tg_csv_load(p, &(tg_csv_opts){ .header = true, .label_name = "label" }, tg_test_device(), &t) == TG_OK);
    check_values(tg_failed_, t.data, 3, 2, (const double[]){ 1, 2, 4, 5, 6, 7 }, 0);
    check_labels(tg_failed_, t.labels, 3, (const int64_t[]){ 3, 0, -2 });
    CHECK(names_are(t.columns, 2, (const char *const[]){ "f1", "f2" }) && t.classes == NULL);
    tg_csv_table_clear(&t);
    CHECK(tg_csv_load(p, &(tg_csv_opts){ .header = true, .label_column = TG_SOME(-1) }, tg_test_device(), &t) ==
          TG_OK);
    check_values(tg_failed_, t.data, 3, 2, (const double[]){ 1, 3, 4, 0, 6, -2 }, 0);
    check_labels(tg_failed_, t.labels, 3, (const int64_t[]){ 2, 5, 7 });
    tg_csv_table_clear(&t);
}

TEST(string_labels) {
    /* iris-like: the species strings, one of them quoted with a line break */
    const char *p = write_text("slab.csv", "5.1,versicolor\n4.9,setosa\n6.3,\"virginica\"\n5.0,setosa\n"
                                           "7.0,\"two\nlines\"\n");
    tg_csv_table t;
    CHECK(tg_csv_load(p, &(tg_csv_opts){ .label_column = TG_SOME(1), .label_mode = TG_CSV_LABEL_FIRST_SEEN },
                      tg_test_device(), &t) == TG_OK);
    check_values(tg_failed_, t.data, 5, 1, (const double[]){ 5.1, 4.9, 6.3, 5.0, 7.0 }, 1e-6);
    check_labels(tg_failed_, t.labels, 5, (const int64_t[]){ 0, 1, 2, 1, 3 });
    CHECK(names_are(t.classes, 4, (const char *const[]){ "versicolor", "setosa", "virginica", "two\nlines" }));
    tg_csv_table_clear(&t);
    CHECK(tg_csv_load(p, &(tg_csv_opts){ .label_column = TG_SOME(1), .label_mode = TG_CSV_LABEL_SORTED },
                      tg_test_device(), &t) == TG_OK);
    check_labels(tg_failed_, t.labels, 5, (const int64_t[]){ 2, 0, 3, 0, 1 });
    CHECK(names_are(t.classes, 4, (const char *const[]){ "setosa", "two\nlines", "versicolor", "virginica" }));
    tg_csv_table_clear(&t);
}

TEST(many_distinct_labels) {
    /* more strings than the label table's first size, in reverse order */
    char *text = malloc(300 * 16), *q = text;
    for (int i = 299; i >= 0; i--) q += sprintf(q, "%d,k%03d\n", i, i);
    const char *p = write_text("many.csv", text);
    free(text);
    tg_csv_table t;
    CHECK(tg_csv_load(p, &(tg_csv_opts){ .label_column = TG_SOME(1), .label_mode = TG_CSV_LABEL_SORTED },
                      tg_test_device(), &t) == TG_OK);
    int64_t want[300];
    for (int i = 0; i < 300; i++) want[i] = 299 - i; /* "k299" first, sorted last */
    check_labels(tg_failed_, t.labels, 300, want);
    CHECK(tg_strings_count(t.classes) == 300 && strcmp(tg_strings_get(t.classes, 7), "k007") == 0);
    tg_csv_table_clear(&t);
}

TEST(errors) {
    tg_device *dev = tg_test_device();
    tg_csv_table t;
    /* files read with the default options: the message after "tg_csv_load: '<path>' " */
    static const struct {
        const char *name, *text, *msg;
    } bad[] = {
        { "nan.csv", "1,2\n3,4\n5,abc\n", "line 3, column 2: 'abc' is not a number" },
        { "emptycell.csv", "1,2\n3,\n", "line 2, column 2: '' is not a number" },
        { "trail.csv", "1,2\n3,4x\n", "line 2, column 2: '4x' is not a number" },
        { "long.csv", "1\n0123456789012345678901234567890123456789abc\n",
          "line 2, column 1: '0123456789012345678901234567890123456789...' is not a number" },
        { "ragged.csv", "1,2,3\n\n4,5\n", "line 3 has 2 fields, expected 3" },
        { "unterminated.csv", "1,2\n3,\"4\n5\n", "line 2, column 2: unterminated quoted field" },
        { "afterquote.csv", "\"1\"x,2\n", "line 1, column 1: 'x' after a closing quote (expected ',' or the end of the line)" },
        { "empty.csv", "\n\n", "is empty" },
    };
    const char *p = NULL;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p = write_text(bad[i].name, bad[i].text);
        CHECK_ERROR(tg_csv_load(p, NULL, dev, &t), msgf("tg_csv_load: '%s' %s", p, bad[i].msg));
        CHECK(tg_last_status() == TG_ERR_IO && t.data == NULL);
    }
    /* the record after a two-line quoted field starts on line 4 */
    p = write_text("ragged_label.csv", "a,b,c\n1,\"2\n\",3\n4,5\n");
    CHECK_ERROR(tg_csv_load(p, &(tg_csv_opts){ .header = true, .label_column = TG_SOME(1),
                                               .label_mode = TG_CSV_LABEL_SORTED }, dev, &t),
                msgf("tg_csv_load: '%s' line 4 has 2 fields, expected 3", p));
    p = write_text("headonly.csv", "a,b\n");
    CHECK_ERROR(tg_csv_load(p, &(tg_csv_opts){ .header = true }, dev, &t),
                msgf("tg_csv_load: '%s' has no data records, only the header", p));
    CHECK(t.columns == NULL);
    p = write_text("lab.csv", "a,b\n1,cat\n");
    CHECK_ERROR(tg_csv_load(p, &(tg_csv_opts){ .header = true, .label_column = TG_SOME(1) }, dev, &t),
                msgf("tg_csv_load: '%s' line 2, column 2: label 'cat' is not an integer (label_mode "
                     "TG_CSV_LABEL_FIRST_SEEN or TG_CSV_LABEL_SORTED maps strings to labels)", p));
    CHECK_ERROR(tg_csv_load(p, &(tg_csv_opts){ .header = true, .label_column = TG_SOME(2) }, dev, &t),
                msgf("tg_csv_load: '%s': label_column 2 is out of range for 2 columns", p));
    CHECK_ERROR(tg_csv_load(p, &(tg_csv_opts){ .header = true, .label_column = TG_SOME(-3) }, dev, &t),
                msgf("tg_csv_load: '%s': label_column -3 is out of range for 2 columns", p));
    CHECK_ERROR(tg_csv_load(p, &(tg_csv_opts){ .header = true, .label_name = "species" }, dev, &t),
                msgf("tg_csv_load: '%s' has no column named 'species'", p));
    CHECK_ERROR(tg_csv_load(p, &(tg_csv_opts){ .label_name = "b" }, dev, &t),
                "tg_csv_load: label_name 'b' needs header = true");
    CHECK_ERROR(tg_csv_load(p, &(tg_csv_opts){ .header = true, .label_name = "b", .label_column = TG_SOME(0) }, dev,
                            &t),
                "tg_csv_load: give label_column or label_name, not both");
    CHECK_ERROR(tg_csv_load(p, &(tg_csv_opts){ .dtype = TG_I32 }, dev, &t), "tg_csv_load: dtype must be f32 or f64, got i32");
    CHECK_ERROR(tg_csv_load(p, &(tg_csv_opts){ .delimiter = '"' }, dev, &t),
                "tg_csv_load: the delimiter cannot be a quote or a line end");
    CHECK_ERROR(tg_csv_load(p, &(tg_csv_opts){ .label_mode = 9 }, dev, &t), "tg_csv_load: unknown label_mode 9");
    p = write_file("nul.csv", "1,a\n2,b\0c\n", 11);
    CHECK_ERROR(tg_csv_load(p, &(tg_csv_opts){ .label_column = TG_SOME(1), .label_mode = TG_CSV_LABEL_SORTED }, dev,
                            &t),
                msgf("tg_csv_load: '%s' line 2, column 2: the label holds a NUL byte", p));
    const char *missing = tmp_path("missing.csv");
    CHECK_ERROR(tg_csv_load(missing, NULL, dev, &t),
                msgf("tg_csv_load: cannot open '%s': No such file or directory", missing));
    CHECK_ERROR(tg_csv_load(tmpdir(), NULL, dev, &t), msgf("tg_csv_load: cannot read '%s': Is a directory", tmpdir()));
    CHECK_ERROR(tg_csv_load(NULL, NULL, dev, &t), "tg_csv_load: path is NULL");
    CHECK_ERROR(tg_csv_load(p, NULL, dev, NULL), "tg_csv_load: out is NULL");
    CHECK_ERROR(tg_csv_load(p, NULL, NULL, &t), "tg_csv_load: device is NULL");
}

TG_TEST_MAIN(&tg_case_header_and_values, &tg_case_no_header_crlf_blank_lines_f64, &tg_case_quoted_fields,
             &tg_case_integer_labels, &tg_case_string_labels, &tg_case_many_distinct_labels, &tg_case_errors)
