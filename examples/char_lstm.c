/* A character-level LSTM language model (the notes' many-to-many recurrent network):
 * embedding -> LSTM -> linear over the characters of a text file, trained with truncated
 * backpropagation through time (the state carried across windows, detached), Adam and
 * gradient clipping; it samples text from the model as it trains and ends with one
 * table: per epoch the training loss, the held-out loss in bits per character, and the
 * start of a sample.
 *
 *     build/examples/char_lstm [--text FILE] [--epochs N] [--hidden H] [--seq T]
 *         [--batch B] [--lr X] [--limit CHARS] [--device NAME] [--seed S]
 *         [--max-bpc X]
 *
 * The default text is Debian's /usr/share/common-licenses/GPL-3 (every Debian system
 * has it). --max-bpc makes it a test: exit 1 if the final held-out bits per character
 * are above X (a model that learnt nothing is at log2(vocabulary) ~ 6.4). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tapegrad.h"

typedef struct {
    const char *text, *device;
    int epochs, hidden, seq, batch, embed;
    double lr, max_bpc;
    long limit;
    uint64_t seed;
} options;

typedef struct {
    int64_t n;         /* characters */
    int32_t *ids;      /* each character's index in vocab */
    int vocab_size;
    unsigned char vocab[256];
} corpus;

typedef struct {
    tg_module *embed, *lstm, *head;
} char_model;

static double now_s(void) {
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------- options and data */

static int usage(void) {
    fprintf(stderr, "usage: char_lstm [--text FILE] [--epochs N] [--hidden H] [--seq T] [--batch B] [--lr X]\n"
                    "                 [--limit CHARS] [--device NAME] [--seed S] [--max-bpc X]\n");
    return 2;
}

static bool parse_args(int argc, char **argv, options *o) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return false;
        if (!strcmp(a, "--text")) o->text = v;
        else if (!strcmp(a, "--device")) o->device = v;
        else if (!strcmp(a, "--epochs")) o->epochs = atoi(v);
        else if (!strcmp(a, "--hidden")) o->hidden = atoi(v);
        else if (!strcmp(a, "--seq")) o->seq = atoi(v);
        else if (!strcmp(a, "--batch")) o->batch = atoi(v);
        else if (!strcmp(a, "--lr")) o->lr = atof(v);
        else if (!strcmp(a, "--limit")) o->limit = atol(v);
        else if (!strcmp(a, "--seed")) o->seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--max-bpc")) o->max_bpc = atof(v);
        else return false;
        i++;
    }
    return o->epochs > 0 && o->hidden > 0 && o->seq > 1 && o->batch > 0 && o->lr > 0;
}

/* Reads the file (at most limit bytes when limit > 0) and maps each byte to its index
 * among the distinct bytes, in byte order. */
static bool load_corpus(const char *path, long limit, corpus *c) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "char_lstm: cannot open '%s'\n", path);
        return false;
    }
    unsigned char *buf = NULL;
    size_t n = 0, cap = 0;
    for (int ch; (ch = fgetc(f)) != EOF && (limit <= 0 || (long)n < limit);) {
        if (n == cap && !(buf = realloc(buf, cap = cap ? 2 * cap : 65536))) break;
        buf[n++] = (unsigned char)ch;
    }
    fclose(f);
    int index[256];
    bool seen[256] = { false };
    for (size_t i = 0; i < n; i++) seen[buf[i]] = true;
    c->vocab_size = 0;
    for (int b = 0; b < 256; b++)
        if (seen[b]) index[b] = c->vocab_size, c->vocab[c->vocab_size++] = (unsigned char)b;
    c->ids = malloc((n ? n : 1) * sizeof *c->ids);
    if (!buf || !c->ids || n < 1000) {
        fprintf(stderr, "char_lstm: '%s': %s\n", path, n < 1000 ? "needs at least 1000 characters" : "out of memory");
        free(buf);
        return false;
    }
    for (size_t i = 0; i < n; i++) c->ids[i] = index[buf[i]];
    c->n = (int64_t)n;
    free(buf);
    return true;
}

/* ------------------------------------------------------------- the model */

/* ids (T,B) -> logits (T,B,V); states h, c (1,B,H) in and out (NULL in: zeros). */
static tg_tensor *model_forward(const char_model *m, tg_tensor *ids, tg_tensor **h, tg_tensor **c) {
    tg_tensor *x = tg_module_forward(m->embed, ids);
    tg_tensor *y = tg_rnn_module_forward(m->lstm, x, *h, *c, h, c);
    return tg_module_forward(m->head, y);
}

/* Windows: row b of a batch reads the b-th of B equal stretches of the text, so the
 * state carried from one window to the next continues the same stretch. Fills ids
 * (T,B) and targets (T*B) for the window starting at offset t0 of each stretch. */
static void window(const corpus *c, int64_t begin, int64_t stretch, int64_t t0, int T, int B, int32_t *ids,
                   int32_t *targets) {
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) {
            int64_t at = begin + b * stretch + t0 + t;
            ids[t * B + b] = c->ids[at];
            targets[t * B + b] = c->ids[at + 1];
        }
}

/* Mean cross-entropy (nats) over the stretch [begin, begin + B*stretch) in windows. */
static double run_stretch(const char_model *m, tg_optim *opt, const corpus *c, int64_t begin, int64_t stretch,
                          const options *o, int B, tg_device *dev) {
    int32_t *ids = malloc((size_t)o->seq * B * sizeof *ids), *tg = malloc((size_t)o->seq * B * sizeof *tg);
    tg_tensor *h = NULL, *cs = NULL;
    double sum = 0;
    int64_t windows = 0;
    bool train = opt != NULL, prev = tg_set_grad_enabled(train);
    for (int64_t t0 = 0; ids && tg && t0 + o->seq < stretch; t0 += o->seq, windows++) {
        window(c, begin, stretch, t0, o->seq, B, ids, tg);
        tg_tensor *h_next = NULL, *c_next = NULL;
        tg_scope_begin();
        tg_tensor *x = tg_from_i32(ids, TG_SHAPE(o->seq, B), dev), *y = tg_from_i32(tg, TG_SHAPE(o->seq * B), dev);
        tg_tensor *hs = h, *ct = cs;
        tg_tensor *logits = model_forward(m, x, &hs, &ct);
        tg_tensor *loss = tg_cross_entropy(tg_reshape(logits, TG_SHAPE(o->seq * B, c->vocab_size)), y);
        double l = tg_item(loss);
        if (train) {
            tg_optim_zero_grad(opt);
            if (tg_backward(loss) != TG_OK) l = NAN;
            tg_optim_clip_grad_norm(opt, 1.0, NULL);
            if (tg_optim_step(opt) != TG_OK) l = NAN;
        }
        /* the state goes on to the next window without its graph (truncated BPTT): the
         * caller owns it past the scope */
        h_next = tg_take(tg_detach(hs));
        c_next = tg_take(tg_detach(ct));
        tg_scope_end();
        tg_release(h), tg_release(cs);
        h = h_next, cs = c_next;
        if (isnan(l)) {
            fprintf(stderr, "char_lstm: %s\n", *tg_last_error() ? tg_last_error() : "the loss is NaN");
            sum = NAN;
            break;
        }
        sum += l;
    }
    tg_set_grad_enabled(prev);
    tg_release(h), tg_release(cs);
    free(ids), free(tg);
    return windows ? sum / (double)windows : NAN;
}

/* Draws n characters after a one-character prompt, at temperature 0.8, into out. */
static void sample(const char_model *m, const corpus *c, int n, uint64_t *rng, tg_device *dev, char *out) {
    bool prev = tg_set_grad_enabled(false);
    tg_scope_begin();
    tg_tensor *h = NULL, *cs = NULL;
    int32_t id = c->ids[0];
    float *p = malloc((size_t)c->vocab_size * sizeof *p);
    for (int i = 0; i < n && p; i++) {
        tg_tensor *logits = model_forward(m, tg_from_i32(&id, TG_SHAPE(1, 1), dev), &h, &cs);
        tg_tensor *prob = tg_softmax(tg_mul_scalar(tg_reshape(logits, TG_SHAPE(c->vocab_size)), 1 / 0.8), 0);
        if (tg_copy_to_host(prob, p, (size_t)c->vocab_size * sizeof *p) != TG_OK) break;
        *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
        double u = (double)(*rng >> 11) * 0x1.0p-53, acc = 0;
        int k = 0;
        while (k < c->vocab_size - 1 && (acc += p[k]) < u) k++;
        id = k;
        unsigned char ch = c->vocab[k];
        out[i] = ch == '\n' || ch == '\t' ? ' ' : (ch < 32 || ch > 126) ? '?' : (char)ch;
    }
    out[n] = '\0';
    free(p);
    tg_scope_end();
    tg_set_grad_enabled(prev);
}

/* ------------------------------------------------------------- main */

static bool build(char_model *m, const options *o, int vocab, tg_device *dev) {
    m->embed = tg_embedding_new(vocab, o->embed, NULL, dev);
    m->lstm = tg_lstm_new(o->embed, o->hidden, NULL, dev);
    m->head = tg_linear_new(o->hidden, vocab, NULL, dev);
    return m->embed && m->lstm && m->head;
}

static tg_optim *make_adam(const char_model *m, double lr) {
    tg_tensor *params[32];
    int n = 0;
    tg_module *mods[3] = { m->embed, m->lstm, m->head };
    for (int i = 0; i < 3; i++) {
        tg_named list;
        if (tg_module_parameters(mods[i], true, &list) != TG_OK) return NULL;
        for (int j = 0; j < list.n && n < 32; j++) params[n++] = list.tensors[j];
        tg_named_free(&list);
    }
    return tg_adam_new(n, params, &(tg_adam_opts){ .lr = TG_SOME(lr) });
}

int main(int argc, char **argv) {
    options o = { .text = "/usr/share/common-licenses/GPL-3", .epochs = 20, .hidden = 256, .seq = 48, .batch = 16,
                  .embed = 32, .lr = 3e-3, .seed = 1 };
    if (!parse_args(argc, argv, &o)) return usage();
    tg_device *dev = tg_device_get(o.device);
    corpus c;
    if (!dev || !load_corpus(o.text, o.limit, &c)) {
        if (!dev) fprintf(stderr, "char_lstm: %s\n", tg_last_error());
        return 1;
    }
    tg_manual_seed(o.seed);
    char_model m = { 0 };
    tg_optim *opt = build(&m, &o, c.vocab_size, dev) ? make_adam(&m, o.lr) : NULL;
    if (!opt) {
        fprintf(stderr, "char_lstm: %s\n", tg_last_error());
        return 1;
    }
    /* the last tenth of the text is held out */
    int64_t n_train = c.n * 9 / 10, stretch = (n_train - 1) / o.batch, held = c.n - n_train - 1;
    printf("%s: %lld characters (%d distinct), %lld held out; LSTM %d-%d, %d-step windows, batch %d, Adam %g\n",
           o.text, (long long)c.n, c.vocab_size, (long long)held, o.embed, o.hidden, o.seq, o.batch, o.lr);
    printf("\n%-6s %10s %12s %10s  %s\n", "epoch", "train loss", "held-out bpc", "seconds", "sample (temperature 0.8)");
    uint64_t rng = o.seed;
    double bpc = NAN;
    int rc = 0;
    for (int e = 1; e <= o.epochs && rc == 0; e++) {
        double t0 = now_s();
        double train = run_stretch(&m, opt, &c, 0, stretch, &o, o.batch, dev);
        double test = run_stretch(&m, NULL, &c, n_train, held, &o, 1, dev);
        bpc = test / log(2.0);
        char text[61];
        sample(&m, &c, 60, &rng, dev, text);
        printf("%-6d %10.4f %12.3f %10.1f  %s\n", e, train, bpc, now_s() - t0, text);
        fflush(stdout);
        if (isnan(train) || isnan(test)) rc = 1;
    }
    if (rc == 0 && o.max_bpc > 0 && !(bpc <= o.max_bpc)) {
        fprintf(stderr, "char_lstm: held-out %.3f bits per character is above --max-bpc %g\n", bpc, o.max_bpc);
        rc = 1;
    }
    tg_optim_free(opt);
    tg_module_free(m.embed), tg_module_free(m.lstm), tg_module_free(m.head);
    free(c.ids);
    return rc;
}
