/* The recorded graph as Graphviz DOT: exact text for a tiny graph (written by hand from
 * the ops called), parameter names from a module, multi-output ops, user functions,
 * stability across calls and after backward, Graphviz accepting the files, and errors. */
#include <unistd.h>

#include "text_check.h"

static char *dot_text(const tg_tensor *t, const tg_dot_opts *o) {
    FILE *f = tmpfile();
    if (!f) return NULL;
    char *s = tg_graph_dot(f, t, o) == TG_OK ? tg_test_slurp(f) : NULL;
    fclose(f);
    return s;
}

/* loss = sum(relu(x @ w)) (keepdim: one node; without it a reshape follows): x a constant
 * input, w a named leaf. */
static tg_tensor *tiny(tg_tensor **w_out) {
    tg_device *dev = tg_test_device();
    tg_tensor *x = tg_from_f32((float[]){ 1, 2, 3, 4, 5, 6 }, TG_SHAPE(2, 3), dev);
    tg_tensor *w = tg_param(tg_from_f32((float[]){ 1, -1, 0.5f }, TG_SHAPE(3, 1), dev));
    *w_out = w;
    return tg_sum(tg_relu(tg_matmul(x, w)), TG_ALL, true);
}

static const char *tiny_expected =
    "digraph \"tapegrad\" {\n"
    "  node [fontname=\"Helvetica\", fontsize=10];\n"
    "  edge [fontname=\"Helvetica\", fontsize=9];\n"
    "  n0 [shape=box, peripheries=2, label=\"tg_sum\\n[1,1] f32\"];\n"
    "  n1 -> n0;\n"
    "  n1 [shape=box, label=\"tg_relu\\n[2,1] f32\"];\n"
    "  n2 -> n1;\n"
    "  n2 [shape=box, label=\"tg_matmul\\n[2,1] f32\"];\n"
    "  c0 [shape=ellipse, style=dashed, label=\"input\\n[2,3] f32\\nno grad\"];\n"
    "  c0 -> n2 [label=\"a\"];\n"
    "  l0 [shape=ellipse, label=\"w\\n[3,1] f32\\nrequires_grad\"];\n"
    "  l0 -> n2 [label=\"b\"];\n"
    "}\n";

TEST(tiny_graph_exact_text) {
    tg_tensor *w;
    tg_tensor *loss = tiny(&w);
    char *names[] = { "w" };
    tg_dot_opts o = { .n_names = 1, .tensors = &w, .names = names };
    char *a = dot_text(loss, &o);
    CHECK_TEXT(a, tiny_expected);
    /* The same text again, and after a backward that freed the saved tensors. */
    CHECK(tg_backward(loss) == TG_OK);
    char *b = dot_text(loss, &o);
    CHECK(a && b && strcmp(a, b) == 0);
    free(a), free(b);
}

TEST(unnamed_leaf_and_leaf_root) {
    tg_tensor *w;
    tg_tensor *loss = tiny(&w);
    char *s = dot_text(loss, NULL);
    CHECK(s && strstr(s, "  l0 [shape=ellipse, label=\"leaf\\n[3,1] f32\\nrequires_grad\"];\n"));
    free(s);
    s = dot_text(w, NULL); /* a leaf alone is a graph of one ellipse */
    CHECK(s && strstr(s, "  l0 [shape=ellipse, label=\"leaf\\n[3,1] f32\\nrequires_grad\"];\n}\n"));
    free(s);
    tg_tensor *c = tg_zeros(TG_F64, TG_SHAPE(2), tg_test_device());
    s = dot_text(c, NULL);
    CHECK(s && strstr(s, "label=\"leaf\\n[2] f64\\nno grad\""));
    free(s);
}

TEST(module_parameter_names) {
    tg_device *dev = tg_test_device();
    tg_manual_seed(1);
    tg_module *fc = tg_linear_new(3, 2, NULL, dev);
    tg_named params;
    CHECK(tg_module_parameters(fc, false, &params) == TG_OK);
    tg_tensor *y = tg_module_forward(fc, tg_ones(TG_F32, TG_SHAPE(4, 3), dev));
    tg_tensor *loss = tg_mean(y, TG_ALL, false);
    char *s = dot_text(loss, &(tg_dot_opts){ .n_names = params.n, .tensors = params.tensors, .names = params.names,
                                                  .graph_name = "net" });
    CHECK(s && strncmp(s, "digraph \"net\" {\n", 16) == 0);
    CHECK(s && strstr(s, "label=\"weight\\n[2,3] f32\\nrequires_grad\""));
    CHECK(s && strstr(s, "label=\"bias\\n[2] f32\\nrequires_grad\""));
    CHECK(s && strstr(s, "label=\"input\\n[4,3] f32\\nno grad\""));
    free(s);
    tg_named_free(&params);
    tg_module_free(fc);
}

static tg_status twice_fwd(tg_function_ctx *c, tg_tensor *const *in, tg_tensor **out) {
    (void)c;
    out[0] = tg_mul_scalar(in[0], 2);
    return out[0] ? TG_OK : tg_last_status();
}
static tg_status twice_bwd(tg_function_ctx *c, tg_tensor *const *gout, tg_tensor **gin) {
    (void)c;
    gin[0] = tg_mul_scalar(gout[0], 2);
    return gin[0] ? TG_OK : tg_last_status();
}

TEST(multi_output_and_user_function) {
    tg_device *dev = tg_test_device();
    tg_tensor *x = tg_param(tg_ones(TG_F32, TG_SHAPE(4), dev));
    tg_tensor *parts[2];
    CHECK(tg_chunk(x, 2, 0, parts) == 2);
    static const tg_function twice = { "twice \"q\"", 1, 1, twice_fwd, twice_bwd };
    tg_tensor *t = tg_function_call(&twice, NULL, 1, &parts[1]);
    tg_tensor *loss = tg_sum(tg_add(parts[0], t), TG_ALL, false);
    char *s = dot_text(loss, NULL);
    CHECK(s && strstr(s, "label=\"tg_chunk\\n0:\\n[2] f32\\n1:\\n[2] f32\"];\n"));
    CHECK(s && strstr(s, "label=\"output 0 a\"]"));
    CHECK(s && strstr(s, "label=\"output 1\"]"));
    CHECK(s && strstr(s, "label=\"twice \\\"q\\\"\\n(tg_function_apply)\\n[2] f32\""));
    free(s);
}

TEST(graphviz_accepts_the_file) {
    if (system("command -v dot > /dev/null 2>&1") != 0) SKIP("graphviz (dot) is not installed");
    tg_device *dev = tg_test_device();
    tg_manual_seed(2);
    tg_module *net = tg_sequential(tg_linear_new(5, 4, NULL, dev), tg_relu_new(), tg_linear_new(4, 3, NULL, dev));
    tg_named params;
    CHECK(tg_module_parameters(net, false, &params) == TG_OK);
    tg_tensor *labels = tg_from_i32((int32_t[]){ 0, 2 }, TG_SHAPE(2), dev);
    tg_tensor *loss = tg_cross_entropy(tg_module_forward(net, tg_randn(TG_F32, TG_SHAPE(2, 5), dev)), labels);
    char path[] = "/tmp/tg_dot_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    CHECK(tg_graph_dot_save(path, loss, &(tg_dot_opts){ .n_names = params.n, .tensors = params.tensors,
                                                              .names = params.names }) == TG_OK);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "dot -Tsvg %s -o /dev/null", path);
    CHECK(system(cmd) == 0);
    FILE *f = fopen(path, "r");
    char buf[4096] = "";
    CHECK(f && fread(buf, 1, sizeof buf - 1, f) > 0);
    if (f) fclose(f);
    CHECK(strstr(buf, "0.weight\\n[4,5] f32") && strstr(buf, "2.bias\\n[3] f32"));
    remove(path);
    tg_named_free(&params);
    tg_module_free(net);
}

TEST(errors) {
    tg_tensor *w;
    tg_tensor *loss = tiny(&w);
    FILE *f = tmpfile();
    CHECK_ERROR(tg_graph_dot(NULL, loss, NULL), "tg_graph_dot: f is NULL");
    CHECK_ERROR(tg_graph_dot(f, NULL, NULL), "tg_graph_dot: t is NULL");
    CHECK_ERROR(tg_graph_dot(f, loss, &(tg_dot_opts){ .n_names = -1 }), "tg_graph_dot: n_names is -1 (negative)");
    CHECK_ERROR(tg_graph_dot(f, loss, &(tg_dot_opts){ .n_names = 2 }),
                "tg_graph_dot: n_names is 2 but tensors or names is NULL");
    CHECK_ERROR(tg_graph_dot_save(NULL, loss, NULL), "tg_graph_dot_save: path is NULL");
    CHECK_ERROR(tg_graph_dot_save("/tmp", NULL, NULL), "tg_graph_dot_save: t is NULL");
    CHECK_ERROR_CONTAINS(tg_graph_dot_save("/nonexistent-dir/g.dot", loss, NULL),
                         "tg_graph_dot_save: cannot open '/nonexistent-dir/g.dot' for writing: ");
    CHECK(tg_last_status() == TG_ERR_IO);
    fclose(f);
    FILE *full = fopen("/dev/full", "w");
    if (full) {
        CHECK_ERROR_CONTAINS(tg_graph_dot(full, loss, NULL), "tg_graph_dot: writing the graph failed");
        fclose(full);
    }
}

TG_TEST_MAIN(&tg_case_tiny_graph_exact_text, &tg_case_unnamed_leaf_and_leaf_root, &tg_case_module_parameter_names,
             &tg_case_multi_output_and_user_function, &tg_case_graphviz_accepts_the_file, &tg_case_errors)
