;; What write_backup.clj and read_backup.clj share: the pieces of the
;; Clojure Datacamp library (org.alekcz/datacamp) they reproduce, and the
;; typed EDN form in which both print datoms for the Rust test to compare.
;;
;; Only clojure, clojure.data.fressian (with the Java fressian jar) and the
;; Java standard library are used, so the scripts run on Debian's packages:
;;   clojure -cp /usr/share/java/data.fressian.jar:/usr/share/java/fressian.jar SCRIPT ARGS
(require '[clojure.data.fressian :as fress]
         '[clojure.edn :as edn]
         '[clojure.java.io :as io]
         '[clojure.pprint :as pp]
         '[clojure.string :as str])
(import '(java.io ByteArrayOutputStream ByteArrayInputStream File)
        '(java.util.zip GZIPOutputStream GZIPInputStream)
        '(java.security MessageDigest)
        '(java.time Instant ZoneOffset)
        '(java.time.format DateTimeFormatter))

(def tx0
  "Datahike's bootstrap transaction; the library's restore drops its datoms."
  536870912)

;; ------------------------------------------------ the library's own pieces

(defn sha256
  "datacamp.utils/sha256: lowercase hex of the SHA-256 of the bytes."
  [^bytes data]
  (let [digest (MessageDigest/getInstance "SHA-256")]
    (apply str (map #(format "%02x" %) (.digest digest data)))))

(defn compress-gzip
  "datacamp.compression/compress-gzip: GZIPOutputStream at its default
  level (the library's :level option is never passed on)."
  ^bytes [^bytes data]
  (let [baos (ByteArrayOutputStream.)]
    (with-open [gzip (GZIPOutputStream. baos)]
      (.write gzip data))
    (.toByteArray baos)))

(defn decompress-gzip
  "datacamp.compression/decompress-gzip."
  ^bytes [^bytes data]
  (let [baos (ByteArrayOutputStream.)]
    (with-open [gzip (GZIPInputStream. (ByteArrayInputStream. data))]
      (let [buffer (byte-array 8192)]
        (loop []
          (let [n (.read gzip buffer)]
            (when (pos? n)
              (.write baos buffer 0 n)
              (recur))))))
    (.toByteArray baos)))

(defn serialize-to-bytes
  "datacamp.serialization/serialize-to-bytes."
  ^bytes [data]
  (let [baos (ByteArrayOutputStream.)]
    (with-open [writer (fress/create-writer baos)]
      (fress/write-object writer data))
    (.toByteArray baos)))

(defn deserialize-from-bytes
  "datacamp.serialization/deserialize-from-bytes."
  [^bytes data]
  (with-open [reader (fress/create-reader (ByteArrayInputStream. data))]
    (fress/read-object reader)))

(defn deserialize-datom-chunk
  "datacamp.serialization/deserialize-datom-chunk: refuses a document whose
  :format/type is not :datom-chunk."
  [^bytes data]
  (let [chunk-data (deserialize-from-bytes data)]
    (when (not= (:format/type chunk-data) :datom-chunk)
      (throw (ex-info "Invalid chunk format" {:type (:format/type chunk-data)})))
    chunk-data))

(defn pprint-str
  "datacamp.metadata/write-edn-to-file and write-edn-to-s3 print with
  clojure.pprint."
  [data]
  (with-out-str (pp/pprint data)))

(defn read-file-bytes ^bytes [path]
  (let [f (io/file path)]
    (when-not (.exists f)
      (throw (ex-info "File does not exist" {:path (str path)})))
    (java.nio.file.Files/readAllBytes (.toPath f))))

(defn write-file-bytes [path ^bytes data]
  (let [f (io/file path)]
    (.mkdirs (.getParentFile f))
    (with-open [out (io/output-stream f)]
      (.write out data))
    (.length f)))

;; ------------------------------------------- datoms as typed EDN text
;;
;; One datom per line, [e a v tx added], in the EDN that Datacamp's reader
;; (datacamp_datom::edn::parse_datom) reads, where the text of a value fixes
;; its type: 42 long, 42N bigint, 1.5 double, #datacamp/float 1.5 float,
;; 1.50M bigdec (scale kept), "…" string, :k keyword, s symbol,
;; #inst "…" instant (ms, UTC), #uuid "…", #datacamp/bytes "<base64>"
;; bytes, […] tuple.

(def ^:private inst-format
  (.withZone (DateTimeFormatter/ofPattern "uuuu-MM-dd'T'HH:mm:ss.SSS'Z'") ZoneOffset/UTC))

(defn edn-string
  "A string literal with every control character escaped, so a line of the
  dump is always one line."
  [^String s]
  (let [sb (StringBuilder. "\"")]
    (doseq [c s]
      (case c
        \" (.append sb "\\\"")
        \\ (.append sb "\\\\")
        \newline (.append sb "\\n")
        \tab (.append sb "\\t")
        \return (.append sb "\\r")
        (if (or (< (int c) 0x20) (= (int c) 0x7f))
          (.append sb (format "\\u%04x" (int c)))
          (.append sb c))))
    (str (.append sb "\""))))

(defn- edn-floating [x]
  (let [d (double x)]
    (cond
      (Double/isNaN d) "##NaN"
      (= d Double/POSITIVE_INFINITY) "##Inf"
      (= d Double/NEGATIVE_INFINITY) "##-Inf"
      ;; Float/toString and Double/toString give digits that read back to
      ;; the same float or double.
      :else (str x))))

(defn edn-value [v]
  (cond
    ;; Only inside a tuple (Datahike allows it there; Datacamp's reader
    ;; refuses such a datom, so the dump then does not parse either).
    (nil? v) "nil"
    (instance? Boolean v) (str v)
    (instance? Long v) (str v)
    (instance? Double v) (edn-floating v)
    (instance? Float v) (str "#datacamp/float " (edn-floating v))
    (instance? clojure.lang.BigInt v) (str v "N")
    (instance? BigInteger v) (str v "N")
    (instance? BigDecimal v) (str v "M")
    (string? v) (edn-string v)
    (keyword? v) (str v)
    (symbol? v) (str v)
    (instance? java.util.Date v)
    (str "#inst \"" (.format inst-format (Instant/ofEpochMilli (.getTime ^java.util.Date v))) "\"")
    (uuid? v) (str "#uuid \"" v "\"")
    (bytes? v) (str "#datacamp/bytes \"" (.encodeToString (java.util.Base64/getEncoder) ^bytes v) "\"")
    (instance? java.util.List v) (str "[" (str/join " " (map edn-value v)) "]")
    :else (throw (ex-info (str "no typed EDN form for a value of " (class v)) {:value v}))))

(defn datom-line [[e a v tx added]]
  (str "[" e " " a " " (edn-value v) " " tx " " added "]"))

(defn utf8-writer
  "A writer that writes UTF-8 whatever the platform's default charset (a
  CI machine's POSIX locale would turn every non-ASCII character into ?)."
  ^java.io.Writer [out]
  (java.io.BufferedWriter. (java.io.OutputStreamWriter. out "UTF-8")))
