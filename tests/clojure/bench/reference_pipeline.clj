;; The reference pipeline, as the Clojure Datacamp library runs it for each
;; chunk: clojure.data.fressian/write-object of the chunk map,
;; java.util.zip.GZIPOutputStream at its default level, SHA-256 of the
;; compressed bytes; and the reverse (gunzip + fressian/read).
;;
;; Usage: clojure -cp /usr/share/java/data.fressian.jar:/usr/share/java/fressian.jar \
;;          reference_pipeline.clj DATOMS DATOMS-PER-CHUNK ROUNDS
;; Prints one JSON object on stdout.
(load-file (str (.getParent (java.io.File. ^String *file*)) "/synthetic.clj"))
(require '[clojure.data.fressian :as fress])
(import '(java.io ByteArrayOutputStream ByteArrayInputStream)
        '(java.util.zip GZIPOutputStream GZIPInputStream)
        '(java.security MessageDigest))

(defn chunk-map [id datoms]
  (array-map :format/type :datom-chunk
             :format/version "1.0.0"
             :format/serialization :fressian
             :chunk/id id
             :datoms datoms))

(defn encode-chunk ^bytes [id datoms]
  (let [baos (ByteArrayOutputStream.)
        gz (GZIPOutputStream. baos)
        w (fress/create-writer gz)]
    (fress/write-object w (chunk-map id datoms))
    (.close gz)
    (.toByteArray baos)))

(defn sha256-hex [^bytes b]
  (apply str (map #(format "%02x" (bit-and % 0xff)) (.digest (MessageDigest/getInstance "SHA-256") b))))

(defn decode-chunk [^bytes b]
  (let [m (fress/read (GZIPInputStream. (ByteArrayInputStream. b)))]
    (count (:datoms m))))

(defn -main [& args]
  (let [[n per-chunk rounds] (map #(Long/parseLong %) args)
        chunks (vec (map-indexed (fn [i c] [i (vec c)]) (partition-all per-chunk (datacamp.synthetic/datoms n))))
        encode-all (fn [] (mapv (fn [[i c]] (let [b (encode-chunk i c)] (sha256-hex b) b)) chunks))
        time-ns (fn [f] (let [t (System/nanoTime) r (f)] [(- (System/nanoTime) t) r]))
        ;; warm-up: the JIT needs a few passes before the numbers mean anything
        _ (dotimes [_ 2] (encode-all))
        encoded (encode-all)
        _ (dotimes [_ 2] (doseq [b encoded] (decode-chunk b)))
        enc-times (vec (for [_ (range rounds)] (first (time-ns encode-all))))
        dec-times (vec (for [_ (range rounds)] (first (time-ns #(reduce + (map decode-chunk encoded))))))
        median (fn [xs] (let [s (vec (sort xs))] (s (quot (count s) 2))))
        compressed (reduce + (map alength encoded))]
    (println (format "{\"datoms\": %d, \"chunks\": %d, \"compressed_bytes\": %d, \"encode_median_ns\": %d, \"decode_median_ns\": %d, \"encode_datoms_per_s\": %.1f, \"decode_datoms_per_s\": %.1f}"
                     n (count chunks) compressed (median enc-times) (median dec-times)
                     (/ n (/ (median enc-times) 1e9)) (/ n (/ (median dec-times) 1e9))))))

(apply -main *command-line-args*)
