;; Chunk documents as the Clojure Datacamp library writes and reads them.
(require '[clojure.data.fressian :as fress]
         '[clojure.edn :as edn])
(import '(java.io ByteArrayOutputStream ByteArrayInputStream FileInputStream)
        '(java.util.zip GZIPOutputStream GZIPInputStream)
        '(java.security MessageDigest))

(def edn-readers
  {'datacamp/float (fn [x] (float x))
   'datacamp/bytes (fn [^String s] (.decode (java.util.Base64/getDecoder) s))})

(defn read-edn-file [path]
  (edn/read-string {:readers edn-readers} (slurp path)))

(defn chunk-map [id datoms]
  (array-map :format/type :datom-chunk
             :format/version "1.0.0"
             :format/serialization :fressian
             :chunk/id id
             :datoms datoms))

(defn fressian-bytes ^bytes [m]
  (let [baos (ByteArrayOutputStream.)
        w (fress/create-writer baos)]
    (fress/write-object w m)
    (.toByteArray baos)))

(defn gzip-bytes ^bytes [^bytes b]
  (let [baos (ByteArrayOutputStream.)]
    (with-open [gz (GZIPOutputStream. baos)]
      (.write gz b))
    (.toByteArray baos)))

(defn sha256-hex [^bytes b]
  (apply str (map #(format "%02x" (bit-and % 0xff)) (.digest (MessageDigest/getInstance "SHA-256") b))))

(defn normalize-value [x]
  (cond
    (instance? Double x) [:double (Double/doubleToLongBits x)]
    (instance? Float x) [:float (Float/floatToIntBits x)]
    (instance? Long x) [:long x]
    (instance? clojure.lang.BigInt x) [:bigint (str x)]
    (instance? BigInteger x) [:bigint (str x)]
    (instance? BigDecimal x) [:bigdec (str x)]
    (instance? java.util.Date x) [:inst (.getTime ^java.util.Date x)]
    (bytes? x) [:bytes (vec x)]
    (instance? java.util.List x) [:list (mapv normalize-value x)]
    :else x))
